"""`python -m bench [NAME ...]`: run the benchmarks, print a table, write bench/results.json."""

from bench.runner import main

if __name__ == "__main__":
    raise SystemExit(main())
