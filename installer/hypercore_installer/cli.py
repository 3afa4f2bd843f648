"""hypercore-install: placeholder until the installer issue lands."""
import argparse
import sys


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="hypercore-install", description="Hypercore firstboot installer")
    ap.parse_args(argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
