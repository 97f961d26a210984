"""``python -m claif_cod.cli``: the same as the ``claif-cod`` command."""

from claif_cod.cli.main import main

main()
