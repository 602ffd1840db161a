"""Text normalisation shared by the dedup, the archive, the matching and the output.

Two texts that differ only in Unicode form, letter case, punctuation or spacing have
the same ``normalize`` form and therefore the same ``content_hash``: the cheap
exact-copy test. ``tokens`` gives the words the near-duplicate detection works on.

Text from the outside world carries characters two consumers refuse or obey:
``xml_safe`` removes what lxml refuses (it raises on a control character, and a feed
would fail on one stray ``&#1;``), ``plain_text`` that and escape sequences from what is
parsed, ``storable_text`` what no database engine stores (the archive's last word at its
boundary), and ``for_terminal`` what a terminal obeys (escape sequences in a feed's title
would move the cursor, retitle the window or hide lines of ``monitor search``).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

# Unicode letters and digits in any script; punctuation, marks of quotation and
# underscores separate words ("Kazakhstan’s" -> "kazakhstan", "s").
_WORD_RE = re.compile(r"[^\W_]+")


# Characters XML 1.0 does not allow, which lxml refuses: C0 controls but tab, line feed
# and carriage return; lone surrogates; U+FFFE and U+FFFF.
_NOT_XML_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
# A numeric character reference, which an HTML parser turns into its character.
_CHAR_REF_RE = re.compile(r"&#(?:[xX]0*([0-9a-fA-F]+)|0*([0-9]+));?")
_CHAR_REF_BYTES_RE = re.compile(rb"&#(?:[xX]0*([0-9a-fA-F]+)|0*([0-9]+));?")
# An ESC sequence: a CSI with its parameters, an OSC and the other strings up to their
# terminator, an escape with intermediates ("ESC ( B"); ESC is never text, so these go
# whole. A two-character escape ("ESC c") loses its ESC only: the letter after an ESC
# may be a word's, and alone it is harmless.
_ESC_SEQUENCE = r"\x1b(?:\[[0-?]*[ -/]*[@-~]?|[\]P^_X][^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?|[ -/]+[0-~]?)?"
_ESC_SEQUENCE_RE = re.compile(_ESC_SEQUENCE)
# What a terminal acts on: ESC sequences, a CSI of 8 bits (U+009B) with its parameters,
# any C0 control but tab and line feed, DEL and the C1 controls.
_TERMINAL_RE = re.compile(_ESC_SEQUENCE + r"|\x9b[0-?]*[ -/]*[@-~]?|[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _refers_to_non_xml(match: re.Match[str] | re.Match[bytes]) -> bool:
    hexadecimal, decimal = match.group(1), match.group(2)
    if (hexadecimal and len(hexadecimal) > 6) or (decimal and len(decimal) > 7):
        return False  # past U+10FFFF: parsers make it U+FFFD, which XML allows
    code = int(hexadecimal, 16) if hexadecimal else int(decimal or "0")
    return code <= 0x10FFFF and bool(_NOT_XML_RE.match(chr(code)))


def xml_safe(text: str, *, references: bool = True) -> str:
    """``text`` with what lxml refuses removed: such characters and, in markup
    (``references``), character references to them (``&#1;``).

    A vertical tab or form feed becomes a space (it separates words); every other
    such character goes.
    """
    if references and "&#" in text:
        text = _CHAR_REF_RE.sub(lambda m: "" if _refers_to_non_xml(m) else m.group(0), text)
    return _NOT_XML_RE.sub(lambda m: " " if m.group(0) in "\x0b\x0c" else "", text)


def xml_safe_bytes(markup: bytes) -> bytes:
    """Markup whose encoding is not known yet, with character references to what lxml
    refuses removed (raw control bytes are left: in UTF-16 every other byte is one).

    Safe in any encoding: ``&`` and ``#`` never occur inside a multi-byte character of
    an ASCII-compatible encoding, and in any other the pattern does not match.
    """
    return _CHAR_REF_BYTES_RE.sub(lambda m: b"" if _refers_to_non_xml(m) else m.group(0), markup)


def plain_text(text: str) -> str:
    """Text to store: without ESC sequences (whole, not their bare ESC) nor what XML
    refuses. C1 characters stay, whatever they stand for: ``for_terminal`` removes them
    where it matters."""
    return xml_safe(_ESC_SEQUENCE_RE.sub("", text) if "\x1b" in text else text, references=False)


# Removed from stored text: C0 controls but tab, newline and carriage return; DEL and C1;
# lone surrogates; the noncharacters U+FDD0..U+FDEF and U+xFFFE/U+xFFFF of every plane.
_UNSTORABLE = re.compile(
    "[\x00-\x08\x0e-\x1b\x7f-\x84\x86-\x9f\ud800-\udfff\ufdd0-\ufdef"
    + "".join(f"{chr(plane << 16 | 0xFFFE)}{chr(plane << 16 | 0xFFFF)}" for plane in range(17))
    + "]"
)
# Controls that separate lines or records (VT, FF, FS, GS, RS, US, NEL): a line break,
# so that the words on either side stay apart.
_SEPARATORS = re.compile("[\x0b\x0c\x1c-\x1f\x85]")


def storable_text(value: str) -> str:
    """``value`` without what no engine stores: control characters, lone surrogates, noncharacters."""
    return _UNSTORABLE.sub("", _SEPARATORS.sub("\n", value))


def for_terminal(text: str) -> str:
    """``text`` with escape sequences and control characters removed (tab and line feed stay)."""
    return _TERMINAL_RE.sub("", text)


def tokens(text: str) -> list[str]:
    """The words of ``text``: NFKC-normalised, case-folded, in order."""
    return _WORD_RE.findall(unicodedata.normalize("NFKC", text).casefold())


def normalize(text: str) -> str:
    """The words of ``text`` joined by single spaces: what ``content_hash`` hashes."""
    return " ".join(tokens(text))


def content_hash(text: str) -> str:
    """SHA-256 (hex) of the normalised text; equal for copies that differ in form only."""
    return tokens_hash(tokens(text))


def tokens_hash(words: list[str]) -> str:
    """``content_hash`` of a text whose ``tokens`` are ``words`` (saves tokenising twice)."""
    return hashlib.sha256(" ".join(words).encode("utf-8")).hexdigest()
