"""Query options of a SensorThings request: ``$filter $top $skip $orderby $count $select
$expand``, with nested options in ``$expand`` (``Datastreams($top=1;$expand=Observations)``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from twin.errors import LimitError, RequestError
from twin.sta.limits import ENV, MAX_INT, StaLimits

#: Page size when ``$top`` is not given (or ``TWIN_STA_MAX_TOP``, if that is smaller).
DEFAULT_TOP = 100

_KNOWN = ("$filter", "$top", "$skip", "$orderby", "$count", "$select", "$expand")


@dataclass
class Options:
    """Parsed query options of one collection (or of one ``$expand`` item).

    Attributes
    ----------
    filter : the ``$filter`` text, or ``None``
    top, skip : paging
    top_given : whether ``$top`` was in the request (``@iot.nextLink`` repeats it)
    orderby : ``(property, descending)`` pairs
    count : whether to report ``@iot.count``
    select : properties to return (empty: all)
    expand : navigation property -> its options
    """

    filter: str | None = None
    top: int = DEFAULT_TOP
    skip: int = 0
    top_given: bool = False
    orderby: list[tuple[str, bool]] = field(default_factory=list)
    count: bool = False
    select: list[str] = field(default_factory=list)
    expand: dict[str, Options] = field(default_factory=dict)


def _split(text: str, separator: str) -> list[str]:
    """Split on ``separator`` outside parentheses and quotes."""
    parts, depth, quoted, start = [], 0, False, 0
    for i, ch in enumerate(text):
        if ch == "'":
            quoted = not quoted
        elif not quoted and ch == "(":
            depth += 1
        elif not quoted and ch == ")":
            depth -= 1
            if depth < 0:
                raise RequestError(f"unbalanced parentheses in {text[:60]!r}")
        elif not quoted and depth == 0 and ch == separator:
            parts.append(text[start:i])
            start = i + 1
    if depth != 0 or quoted:
        raise RequestError(f"unbalanced parentheses or quotes in {text[:60]!r}")
    parts.append(text[start:])
    return [p.strip() for p in parts if p.strip()]


def _integer(name: str, text: str, upper: int = MAX_INT) -> int:
    try:
        value = int(text)
    except ValueError:
        raise RequestError(f"{name}: {text[:30]!r} is not an integer") from None
    if value < 0 or value > upper:
        raise RequestError(f"{name}: {value} is outside 0..{upper}")
    return value


def parse_options(params: Mapping[str, str], limits: StaLimits | None = None) -> Options:
    """Options from query parameters (``{"$top": "10", ...}``); other keys are ignored.

    Raises
    ------
    LimitError
        If a ``$top`` (at any level) is beyond ``limits.max_top`` or ``$expand`` nests deeper
        than ``limits.expand_max_depth``.
    RequestError
        If an option is malformed.
    """
    return _parse(params, limits if limits is not None else StaLimits())


def _parse(params: Mapping[str, str], limits: StaLimits, level: int = 0) -> Options:
    options = Options(top=min(DEFAULT_TOP, limits.max_top))
    if "$filter" in params:
        options.filter = params["$filter"]
    if "$top" in params:
        options.top = _integer("$top", params["$top"])
        options.top_given = True
        if options.top > limits.max_top:
            where = "" if level == 0 else " inside $expand"
            raise LimitError(
                ENV["max_top"],
                limits.max_top,
                f"$top={options.top}{where} is more than {limits.max_top}: page with $skip "
                "or follow @iot.nextLink",
            )
    if "$skip" in params:
        options.skip = _integer("$skip", params["$skip"])
    if "$count" in params:
        value = params["$count"].strip().lower()
        if value not in ("true", "false"):
            raise RequestError(f"$count: {params['$count'][:20]!r} must be true or false")
        options.count = value == "true"
    if "$orderby" in params:
        for item in _split(params["$orderby"], ","):
            words = item.split()
            if len(words) not in (1, 2) or (len(words) == 2 and words[1] not in ("asc", "desc")):
                raise RequestError(f"$orderby: {item[:60]!r} must be 'property [asc|desc]'")
            options.orderby.append((words[0], len(words) == 2 and words[1] == "desc"))
    if "$select" in params:
        options.select = _split(params["$select"], ",")
    if "$expand" in params:
        for item in _split(params["$expand"], ","):
            _add_expand(options, item, limits, level + 1)
    return options


def _add_expand(options: Options, item: str, limits: StaLimits, level: int) -> None:
    """Add one ``$expand`` item: ``Name``, ``Name(opts)`` or ``A/B`` (``A($expand=B)``)."""
    if level > limits.expand_max_depth:  # refused before a deeper level is even read
        raise LimitError(
            ENV["expand_max_depth"],
            limits.expand_max_depth,
            f"$expand nests deeper than {limits.expand_max_depth} levels",
        )
    name, _, rest = item.partition("(")
    nested_text = ""
    if rest:
        if not rest.endswith(")"):
            raise RequestError(f"$expand: {item[:60]!r} is malformed")
        nested_text = rest[:-1]
    path = name.strip().split("/")
    head = path[0]
    child = options.expand.setdefault(head, Options(top=min(DEFAULT_TOP, limits.max_top)))
    if len(path) > 1:
        tail = "/".join(path[1:]) + (f"({nested_text})" if rest else "")
        _add_expand(child, tail, limits, level + 1)
        return
    if nested_text:
        nested: dict[str, str] = {}
        for part in _split(nested_text, ";"):
            key, eq, value = part.partition("=")
            if not eq or key.strip() not in _KNOWN:
                raise RequestError(f"$expand: {part[:60]!r} is not a query option")
            nested[key.strip()] = value
        parsed = _parse(nested, limits, level)
        parsed.expand = {**child.expand, **parsed.expand}
        options.expand[head] = parsed
