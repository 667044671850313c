"""`python -m service`: the same as `pasrec serve`, for images without the console script."""

from service.app import run_server
from service.settings import Settings

run_server(Settings())
