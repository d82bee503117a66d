"""The ``python3 -m argtrain`` subcommands: one module each, with its options and ``run(args)``.

Each module exposes ``main(argv) -> int``; the work itself is in the library modules one level up.
"""
