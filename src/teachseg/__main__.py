"""``python -m teachseg``: the same as the ``teachseg`` console script."""

from teachseg.cli import main

if __name__ == "__main__":
    main()
