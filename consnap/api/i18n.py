"""``_`` for messages returned by the API (oslo.i18n when installed).

Only API messages are translated; log messages never are.  This lives in
the API package until a project-wide ``consnap/i18n.py`` exists.
"""

try:
    import oslo_i18n

    _translators = oslo_i18n.TranslatorFactory(domain='consnap')
    _ = _translators.primary
except ImportError:  # pragma: no cover - oslo.i18n is optional
    def _(msg):
        return msg
