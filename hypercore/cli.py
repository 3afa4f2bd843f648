"""hypercore CLI: placeholder until the VM-services issue lands."""
import argparse
import sys


def main(argv=None) -> int:
    argparse.ArgumentParser(prog="hypercore").parse_args(argv)
    return 0


def create_vm_main(argv=None) -> int:
    argparse.ArgumentParser(prog="create-vm").parse_args(argv)
    return 0


def boot_vm_main(argv=None) -> int:
    argparse.ArgumentParser(prog="boot-vm").parse_args(argv)
    return 0
