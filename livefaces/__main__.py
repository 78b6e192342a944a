"""`python -m livefaces`: the command-line app (see `livefaces.cli`)."""

from livefaces.cli import run

if __name__ == "__main__":
    run()
