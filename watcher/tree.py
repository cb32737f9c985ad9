"""The three edits of lxml.html's ``HtmlElement`` that extraction needs, for
plain lxml elements.

Extraction parses with lxml's own HTML parser rather than ``lxml.html``'s:
``lxml.html`` gives every element a Python class through a Python lookup
called each time an element is touched, about a fifth of the cost of
extracting a news page. The functions below are ``HtmlElement.drop_tree``,
``drop_tag`` and ``text_content``, written for any element.
"""

from __future__ import annotations

from lxml import etree

_STRING = etree.XPath("string()")


def text_content(el: etree._Element) -> str:
    """All text of the subtree, its tail excluded (XPath ``string()``)."""
    return str(_STRING(el))


def drop_tree(el: etree._Element) -> None:
    """Remove ``el`` and its subtree; its tail stays where it was."""
    parent = el.getparent()
    if parent is None:
        return
    if el.tail:
        previous = el.getprevious()
        if previous is None:
            parent.text = (parent.text or "") + el.tail
        else:
            previous.tail = (previous.tail or "") + el.tail
    parent.remove(el)


def drop_tag(el: etree._Element) -> None:
    """Remove the tag of ``el`` only: its text, children and tail stay in place."""
    parent = el.getparent()
    if parent is None:
        return
    previous = el.getprevious()
    if el.text and isinstance(el.tag, str):
        if previous is None:
            parent.text = (parent.text or "") + el.text
        else:
            previous.tail = (previous.tail or "") + el.text
    if el.tail:
        if len(el):
            last = el[-1]
            last.tail = (last.tail or "") + el.tail
        elif previous is None:
            parent.text = (parent.text or "") + el.tail
        else:
            previous.tail = (previous.tail or "") + el.tail
    index = parent.index(el)
    children = list(el)
    parent.remove(el)  # with its tail, already moved
    for offset, child in enumerate(children):
        parent.insert(index + offset, child)
