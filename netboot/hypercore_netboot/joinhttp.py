"""The join-request endpoints of the netboot HTTP server (hypercore.cluster.approval):

    POST /join/requests          {v, name, kind, key}  -> 202 {code, state}
    GET  /join/requests/CODE                           -> 202 waiting | 200 approved (sealed) or denied | 404

Everything here is public: public keys, codes and sealed boxes that only the
asking machine can open. Served only when the server has a request store
(`--join-dir`, the unit's state directory)."""

from __future__ import annotations

import json
from http import HTTPStatus

from hypercore.cluster import approval

PREFIX = approval.PATH


def handles(path: str) -> bool:
    path = path.split("?", 1)[0]
    return path == PREFIX or path.startswith(PREFIX + "/")


def _reply(handler, status: int, doc: dict) -> None:
    body = (json.dumps(doc) + "\n").encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(body)))
    handler.send_header("Cache-Control", "no-store")
    handler.end_headers()
    if handler.command != "HEAD":
        handler.wfile.write(body)


def get(handler, store) -> None:
    code = handler.path.split("?", 1)[0][len(PREFIX) + 1:]
    if store is None:
        return _reply(handler, HTTPStatus.NOT_FOUND, {"error": "this server takes no join requests"})
    status, doc = approval.answer(store, code)
    _reply(handler, status, doc)


def post(handler, store) -> None:
    if store is None or handler.path.split("?", 1)[0] != PREFIX:
        return _reply(handler, HTTPStatus.NOT_FOUND, {"error": "not found"})
    try:
        length = int(handler.headers.get("Content-Length") or "")
    except ValueError:
        return _reply(handler, HTTPStatus.LENGTH_REQUIRED, {"error": "Content-Length required"})
    if length < 0 or length > approval.MAX_BODY:
        return _reply(handler, HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {"error": "request too large"})
    body = handler.rfile.read(length)
    try:
        doc = approval.receive(store, body, handler.client_address[0])
    except approval.RequestError as e:
        return _reply(handler, e.status, {"error": str(e)})
    except OSError as e:
        handler.log_message("cannot keep a join request in %s: %s", store, e)
        return _reply(handler, HTTPStatus.SERVICE_UNAVAILABLE, {"error": "this node cannot keep join requests now"})
    handler.log_message('join request %s from %s', doc["code"], handler.client_address[0])
    _reply(handler, HTTPStatus.ACCEPTED, doc)
