"""``slicer.i18n`` stand-in: translation is the identity here."""


def tr(text: str) -> str:
    return text


def translate(_context: str, text: str) -> str:
    return text
