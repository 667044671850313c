"""`python -m pasrec.service`: the same as `pasrec serve`, for images without the console script."""

from pasrec.service.app import run_server
from pasrec.service.settings import Settings

run_server(Settings())
