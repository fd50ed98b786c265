"""CQ codes and segments: the escaping, the malformed-input table, round trips."""

from __future__ import annotations

import re

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from qqproto.errors import LocalProtocolError, RemoteProtocolError
from qqproto.onebot import cq
from qqproto.onebot.segments import (
    Segment,
    plain_text,
    rename_v11_in_place,
    renamed_from_v11,
    segment_from_v11,
    segment_from_v12,
    segment_to_v11,
    segment_to_v12,
    segments_from_json,
)


def text(value: str) -> Segment:
    return Segment.text(value)


# -- escaping (spec 5.1) --------------------------------------------------------------------


def test_text_escapes_amp_and_brackets_but_not_commas() -> None:
    assert cq.escape_text("a&b[c]d,e") == "a&amp;b&#91;c&#93;d,e"


def test_values_escape_commas_too() -> None:
    assert cq.escape_value("a&b[c]d,e") == "a&amp;b&#91;c&#93;d&#44;e"


def test_amp_is_unescaped_last() -> None:
    assert cq.unescape("&amp;#91;") == "&#91;"  # not "["
    assert cq.unescape("&#44;&#91;&#93;&amp;") == ",[]&"


def test_escaped_entities_in_text_survive_a_round_trip() -> None:
    for literal in ["&#91;", "&amp;", "a&#44;b", "[CQ:face,id=1]"]:
        assert cq.parse(cq.format([text(literal)])) == [text(literal)]


# -- the malformed-input table (spec 5.3): never dropped ---------------------------------------


@pytest.mark.parametrize(
    ("message", "segments"),
    [
        ("[CQ:shake,]", [Segment("shake", {})]),  # a trailing comma
        ("[CQ:image,file]", [text("[CQ:image,file]")]),  # no "=": text
        ("[CQ:image, file=1]", [text("[CQ:image, file=1]")]),  # a space: text
        ("[CQ:image,file=a[b]", [Segment("image", {"file_id": "a[b"})]),
        ("[CQ:image,file=a]b]", [Segment("image", {"file_id": "a"}), text("b]")]),
        ("[CQ:face,id=1", [text("[CQ:face,id=1")]),  # unterminated: text
        ("x[CQ:face,id=1", [text("x[CQ:face,id=1")]),  # and the text before it stays
        ("[CQ:]", [text("[CQ:]")]),
        ("[CQ:face,id=1,id=2]", [Segment("face", {"id": "2"})]),  # the last one wins
        ("[CQ:a.b-c_d,k=v]", [Segment("a.b-c_d", {"k": "v"})]),
        ("[CQ:face,键=1]", [text("[CQ:face,键=1]")]),
        ("[CQ:face,id=1,,x=2]", [text("[CQ:face,id=1,,x=2]")]),
        ("[CQ:text,text=hi]", [text("hi")]),  # the text, not "text=hi"
        ("a&#44;b", [text("a,b")]),
        ("[[CQ:face,id=1]]", [text("["), Segment("face", {"id": "1"}), text("]")]),
        ("[CQ:x,a=1\nb]", [Segment("x", {"a": "1\nb"})]),
        ("[CQ:unknown_type,foo=bar]", [Segment("unknown_type", {"foo": "bar"})]),
        ("[CQ:image,file=]", [Segment("image", {"file_id": ""})]),
    ],
)
def test_the_malformed_input_table(message: str, segments: list[Segment]) -> None:
    assert cq.parse(message) == segments


def test_codes_read_into_the_models_names() -> None:
    assert cq.parse("hi [CQ:at,qq=123] [CQ:at,qq=all][CQ:reply,id=-5][CQ:record,file=v.amr]") == [
        text("hi "),
        Segment("mention", {"user_id": "123"}),
        text(" "),
        Segment("mention_all", {}),
        Segment("reply", {"message_id": "-5"}),
        Segment("voice", {"file_id": "v.amr"}),
    ]


def test_adjacent_text_is_one_segment_and_a_text_code_joins_it() -> None:
    assert cq.parse("a[CQ:text,text=b]c") == [text("abc")]


def test_a_text_code_with_other_keys_keeps_them() -> None:
    [segment] = cq.parse("[CQ:text,text=hi,style=bold]")
    assert segment == Segment("text", {"text": "hi", "style": "bold"})
    assert cq.parse(cq.format([segment])) == [segment]


def test_an_empty_message_has_no_segments() -> None:
    assert cq.parse("") == []


# -- formatting ---------------------------------------------------------------------------------


def test_format_writes_v11_names_and_escapes_values() -> None:
    message = [
        Segment.mention(123),
        text(" a,b[c]"),
        Segment("share", {"url": "https://x/?a=1&b=2", "title": "t,[x]"}),
        Segment.mention_all(),
    ]
    assert cq.format(message) == (
        "[CQ:at,qq=123] a,b&#91;c&#93;"
        "[CQ:share,url=https://x/?a=1&amp;b=2,title=t&#44;&#91;x&#93;][CQ:at,qq=all]"
    )


def test_format_writes_other_values_as_readers_expect() -> None:
    data = {"n": 5, "f": 1.5, "yes": True, "no": False, "gone": None, "o": {"a": 1}}
    segment = Segment("x", data)
    assert cq.format([segment]) == '[CQ:x,n=5,f=1.5,yes=true,no=false,o={"a":1}]'


@pytest.mark.parametrize("bad", [Segment("a b", {}), Segment("x", {"a,b": "1"}), Segment("", {})])
def test_a_type_or_key_cq_cannot_carry_is_refused(bad: Segment) -> None:
    with pytest.raises(LocalProtocolError, match="CQ codes cannot carry"):
        cq.format([bad])


_NAMES = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_.-", min_size=1, max_size=8)
#: v11 keys a conversion renames: a model segment carries the model's names.
_V11_KEYS = {"qq", "file", "id", "lat", "lon"}


@st.composite
def model_segments(draw: st.DrawFn) -> list[Segment]:
    out: list[Segment] = []
    for _ in range(draw(st.integers(0, 6))):
        if draw(st.booleans()):
            value = draw(st.text(min_size=1))
            if out and out[-1].type == "text":  # adjacent text is one segment
                out[-1] = text(out[-1].data["text"] + value)
            else:
                out.append(text(value))
            continue
        kind = draw(_NAMES.filter(lambda n: n not in ("at", "record", "text")))
        keys = draw(st.lists(_NAMES.filter(lambda k: k not in _V11_KEYS), max_size=3))
        data = {key: draw(st.text()) for key in keys}
        if kind == "mention":
            data["user_id"] = draw(st.text().filter(lambda v: v != "all"))
        out.append(Segment(kind, data))
    return out


@given(model_segments())
def test_array_to_string_to_array_round_trips_string_data(segments: list[Segment]) -> None:
    assert cq.parse(cq.format(segments)) == segments


@given(st.text(alphabet="[]CQ:,=&#;0-9abtext\n 键", max_size=60))
def test_any_string_reads_the_same_after_one_round(message: str) -> None:
    """Nothing is lost: what parse made, format writes so that it reads back alike."""
    once = cq.parse(message)
    assert cq.parse(cq.format(once)) == once


@given(st.text(max_size=40).filter(lambda s: "[CQ:" not in s))
def test_a_string_without_codes_is_its_unescaped_text(message: str) -> None:
    assert cq.parse(message) == ([text(cq.unescape(message))] if message else [])


# -- segments across the versions ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("v11", "v12"),
    [
        (("at", {"qq": "123"}), ("mention", {"user_id": "123"})),
        (("at", {"qq": "all"}), ("mention_all", {})),
        (("record", {"file": "f"}), ("voice", {"file_id": "f"})),
        (("image", {"file": "f"}), ("image", {"file_id": "f"})),
        (("video", {"file": "f"}), ("video", {"file_id": "f"})),
        (("reply", {"id": "9"}), ("reply", {"message_id": "9"})),
        (("location", {"lat": 1.5, "lon": 2.5}), ("location", {"latitude": 1.5, "longitude": 2.5})),
        (("text", {"text": "hi"}), ("text", {"text": "hi"})),
    ],
)
def test_the_overlap_converts_both_ways(
    v11: tuple[str, dict[str, str]], v12: tuple[str, dict[str, str]]
) -> None:
    model = segment_from_v11(*v11)
    assert segment_to_v12(model) == v12
    assert segment_to_v11(segment_from_v12(*v12)) == v11


def test_unknown_types_and_fields_survive_untouched() -> None:
    data = {"file": "x.jpg", "sub_type": 1, "summary": "[图片]", "thumb": {"w": 1}}
    assert segment_to_v11(segment_from_v11("image", data)) == ("image", data)
    ext = {"emoji_package_id": 1, "key": "k"}
    assert segment_to_v11(segment_from_v11("mface", ext)) == ("mface", ext)
    assert segment_to_v12(segment_from_v12("qq.face", {"id": 1})) == ("qq.face", {"id": 1})


@pytest.mark.parametrize(
    ("v11", "v12"),
    [("face", "qq.face"), ("mface", "qq.mface"), ("forward", "qq.forward"), ("a.b", "a.b")],
)
def test_qq_extensions_take_the_v12_prefix_and_lose_it_again(v11: str, v12: str) -> None:
    model = segment_from_v11(v11, {"id": "1"})
    assert segment_to_v12(model) == (v12, {"id": "1"})
    assert segment_from_v12(v12, {"id": "1"}) == model
    assert segment_to_v12(segment_from_v12("walle.x", {})) == ("walle.x", {})  # another's stays


def test_a_key_is_renamed_only_where_its_new_name_is_free() -> None:
    both = {"file": "name.txt", "file_id": "/abc"}  # NapCat's file segment has both
    assert segment_from_v11("image", both).data == both
    assert segment_to_v11(segment_from_v11("image", both)) == ("image", both)


_RENAMED_KEYS = [
    "qq",
    "user_id",
    "file",
    "file_id",
    "id",
    "message_id",
    "lat",
    "lon",
    "latitude",
    "x",
]


@given(
    st.sampled_from(["at", "record", "image", "video", "reply", "location", "face", "text"]),
    st.dictionaries(
        st.sampled_from(_RENAMED_KEYS), st.sampled_from(["all", "1", ""]) | st.integers()
    ),
)
def test_renaming_in_place_is_renaming(type_: str, data: dict[str, object]) -> None:
    """The fast path's in-place renaming (a struct's type set after the fact)
    makes what renamed_from_v11 makes, equal and as usable."""
    segment = Segment(type_, dict(data))
    rename_v11_in_place([segment])
    expected = renamed_from_v11(type_, dict(data))
    assert segment == expected and repr(segment) == repr(expected)
    assert list(segment.data) == list(expected.data)  # the same key order too
    assert msgspec.structs.replace(segment, data={}) == Segment(expected.type, {})


def test_v12_coordinates_are_numbers() -> None:
    v11 = segment_from_v11("location", {"lat": "39.90", "lon": "116.40", "title": "x"})
    assert segment_to_v12(v11) == (
        "location",
        {"latitude": 39.9, "longitude": 116.4, "title": "x"},
    )
    odd = segment_from_v11("location", {"lat": "north", "lon": "116.40"})
    assert segment_to_v12(odd)[1]["latitude"] == "north"  # not a number: as it came


def test_v12_ids_are_strings() -> None:
    assert segment_to_v12(segment_from_v11("at", {"qq": 123})) == ("mention", {"user_id": "123"})
    assert segment_to_v12(Segment("reply", {"message_id": -7})) == ("reply", {"message_id": "-7"})


def test_plain_text_shows_text_and_mentions_only() -> None:
    message = cq.parse("hi [CQ:at,qq=-42] [CQ:face,id=1][CQ:at,qq=all]!")
    assert plain_text(message) == "hi @-42 @all!"


def test_segments_from_json_reads_arrays_single_segments_and_null_data() -> None:
    raw = [{"type": "text", "data": {"text": "a"}}, {"type": "rps", "data": None}, {"type": "dice"}]
    assert segments_from_json(raw, 11) == [text("a"), Segment("rps", {}), Segment("dice", {})]
    assert segments_from_json({"type": "at", "data": {"qq": "1"}}, 11) == [Segment.mention(1)]
    assert segments_from_json([{"type": "mention", "data": {"user_id": "1"}}], 12) == [
        Segment.mention("1")
    ]


@pytest.mark.parametrize("bad", ["text", [1], [{"data": {}}], [{"type": "x", "data": [1]}]])
def test_a_message_that_is_no_segments_is_a_typed_error(bad: object) -> None:
    with pytest.raises(RemoteProtocolError, match="bad"):
        segments_from_json(bad, 11)


# -- linear time: a hostile message cannot stall the connection --------------------------------

_REFERENCE = re.compile(r"\[CQ:([A-Za-z0-9_.\-]+)((?:,[A-Za-z0-9_.\-]+=[^,\]]*)*),?\]")


def reference_parse(message: str) -> list[Segment]:
    """The reading the module promises, written the short way (one regex, which
    backtracks: quadratic on hostile input, fine on these small strings)."""
    out: list[Segment] = []
    done = 0
    for code in _REFERENCE.finditer(message):
        if code.start() > done:
            out.append(text(cq.unescape(message[done : code.start()])))
        data = {}
        for pair in code.group(2).split(",")[1:]:
            key, _, value = pair.partition("=")
            data[key] = cq.unescape(value)
        if code.group(1) == "text" and data.keys() <= {"text"}:
            out.append(text(data.get("text", "")))
        else:
            out.append(segment_from_v11(code.group(1), data))
        done = code.end()
    if done < len(message):
        out.append(text(cq.unescape(message[done:])))
    joined: list[Segment] = []
    for segment in out:
        plain = segment.type == "text" and segment.data.keys() == {"text"}
        if plain and not segment.data["text"]:
            continue
        if plain and joined and joined[-1].type == "text" and joined[-1].data.keys() == {"text"}:
            joined[-1] = text(joined[-1].data["text"] + segment.data["text"])
        else:
            joined.append(segment)
    return joined


_PIECES = st.sampled_from(["[CQ:", "a", ",", "=", "]", "[", " ", "x=", "键", "face", ",,", "&amp;"])


@given(st.lists(_PIECES, max_size=24).map("".join))
def test_the_linear_reader_reads_as_the_short_one(message: str) -> None:
    assert cq.parse(message) == reference_parse(message)


@st.composite
def _codes(draw: st.DrawFn) -> str:
    """A code of a type the reader renames (or not), closed or not."""
    kind = draw(st.sampled_from(["at", "image", "record", "reply", "location", "text", "face"]))
    keys = st.sampled_from(["qq", "user_id", "file", "file_id", "id", "lat", "lon", "text", "x"])
    values = st.sampled_from(["all", "1", "", "a&amp;b", "&#44;", "[", "x y"])
    pairs = draw(st.lists(st.tuples(keys, values), max_size=3))
    close = draw(st.sampled_from(["]", ",]", "", ",", " ]"]))
    return "[CQ:" + kind + "".join(f",{key}={value}" for key, value in pairs) + close


@given(st.lists(_codes() | st.sampled_from(["hi ", "&amp;", "[", "]"]), max_size=8).map("".join))
def test_codes_of_every_kind_read_as_the_short_one_reads_them(message: str) -> None:
    assert cq.parse(message) == reference_parse(message)


@pytest.mark.parametrize(
    "hostile",
    ["[CQ:a,b=c" * 16000 + ",,]", "[CQ:" * 40000, "[CQ:a" * 30000, "[CQ:a,b=[" * 20000],
)
def test_hostile_messages_are_read_in_linear_time(
    hostile: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 150 KB message that would take the backtracking regex minutes. Counted,
    not timed: the reader splits the message once; a ``[CQ:`` that is followed
    by a name is matched as far as a code could go, closed or not, so no
    ``[CQ:`` inside a match is tried again, and one that is not fails at once;
    and the pattern never backtracks (every quantifier in it is possessive),
    so each attempt costs what it reads: linear in the message."""
    splits: list[str] = []
    code = cq._CODE

    class Counting:
        def split(self, message: str) -> list[str | None]:
            splits.append(message)
            return code.split(message)

    monkeypatch.setattr(cq, "_CODE", Counting())
    assert cq.parse(hostile) == [text(hostile)]  # no code in any of them: all text, all kept
    assert splits == [hostile]  # one pass, which matched these (split and finditer scan alike):
    matches = iter([match.span() for match in code.finditer(hostile)])
    span = next(matches, None)
    for at in (found.start() for found in re.finditer(re.escape("[CQ:"), hostile)):
        while span is not None and span[1] <= at:
            span = next(matches, None)
        if span is not None and span[0] < at:
            continue  # inside a match: never tried again
        named = hostile[at + 4 : at + 5] == "a"  # these messages' only name
        assert (span is not None and span[0] == at) == named  # else it failed at once
    # And no quantifier in the pattern gives back what it took: each is possessive.
    quantifiers = re.findall(r"(?<!\\)[*+?]\+?", code.pattern.replace("(?:", "("))
    assert quantifiers and all(q in ("++", "*+", "?+") for q in quantifiers)
