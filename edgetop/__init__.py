"""edgetop: one terminal for a hybrid cloud-edge AI fleet."""

import os
import warnings

# The scheduler's matrices are small (1,000 x 26): a BLAS thread pool costs more to wake than
# the work, and under load it turned a 0.6 ms decision into ~40 ms (bench/decision.py). Set
# before numpy is first imported; an operator's own setting wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

# asyncssh imports cryptography's DSA support (edgetop never uses DSA keys), and cryptography
# 46+ warns about it at import: a line of noise on every command's stderr.
warnings.filterwarnings("ignore", message="DSA is deprecated", module=r"asyncssh\.")

__version__ = "0.1.0"
