"""The ``pasrec`` console script."""
