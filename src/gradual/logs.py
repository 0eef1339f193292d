"""Scripts write their progress and errors to the job's log file; an error also reaches the terminal."""

import contextlib
import logging
import sys
import traceback
from pathlib import Path

from gradual.errors import InputError


@contextlib.contextmanager
def job_log(path: str | Path):
    terminal = sys.__stderr__
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", buffering=1) as log, contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        handler = logging.StreamHandler(log)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
        try:
            yield
        except InputError as error:
            print(f"error: {error}", file=log)
            print(f"error: {error}", file=terminal)
            raise SystemExit(1) from None
        except BaseException:
            traceback.print_exc(file=log)
            raise
