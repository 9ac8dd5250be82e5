"""``python -m pytest_autoglm.history --store reports/history.sqlite --environment prod --days 30 --out trend.html``."""

from __future__ import annotations

import sys

from pytest_autoglm.history.trend import main_args

if __name__ == "__main__":
    sys.exit(main_args())
