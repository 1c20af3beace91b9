"""Accepts any space: the fuzz phase runs param files against it."""


def run(**kwargs):
    return 0
