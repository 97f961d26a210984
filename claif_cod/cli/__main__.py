"""``python -m claif_cod.cli``: the same as the ``claif-cod`` command."""

from claif_cod.cli import main

main()
