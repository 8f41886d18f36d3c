"""Run every benchmark: `.venv/bin/python -m bench`."""

from bench import foundation

if __name__ == "__main__":
    foundation.main()
