"""The offence table: codes, families and a total, reproducible order of seriousness."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import pytest

from cdi_stream.offences import (
    AGGRAVATED,
    Offence,
    OffenceTable,
    load_offences,
)

DATA = Path(__file__).resolve().parents[1] / "cdi_stream" / "data" / "offences.csv"


@pytest.fixture(scope="module")
def table() -> OffenceTable:
    return load_offences()


def test_98_rows_give_101_codes(table: OffenceTable) -> None:
    with DATA.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 98
    assert len(table) == 101
    assert sum(1 for o in table if o.code in ("1", "4.1", "4.2", "4.10")) == 4


def test_combined_row_codes_share_its_data(table: OffenceTable) -> None:
    homicide = [table.get(code) for code in ("1", "4.1", "4.2", "4.10")]
    assert all(o is not None for o in homicide)
    assert {(o.name, o.group, o.weight) for o in homicide if o} == {
        (
            "Homicide (murder; manslaughter; infanticide; corporate manslaughter)",
            "Violence against the person - Homicide",
            7973.39,
        )
    }


def test_lookup(table: OffenceTable) -> None:
    assault = table.get("8N")
    assert assault == Offence(
        code="8N",
        name="Assault with injury (ABH)",
        group="Violence with injury",
        victim_based=True,
        weight=189.15,
        weight_imputed=False,
        rank=assault.rank if assault else -1,
        family="violence",
        is_rape=False,
        is_conduct=False,
    )
    assert "8N" in table
    assert table.get("ZZ9") is None
    assert "ZZ9" not in table
    assert table.get("9A") is not None and table.get("9A").victim_based is False  # type: ignore[union-attr]


def test_order_is_total_and_follows_weight_then_code(table: OffenceTable) -> None:
    ordered = list(table)
    assert [o.rank for o in ordered] == list(range(101))
    keys = [(-o.weight, o.code) for o in ordered]
    assert keys == sorted(keys)
    assert len(set(keys)) == len(keys)
    assert ordered[0].code == "1"


def test_order_is_the_same_on_every_load(table: OffenceTable) -> None:
    load_offences.cache_clear()
    again = load_offences()
    assert again is not table
    assert [(o.code, o.rank) for o in again] == [(o.code, o.rank) for o in table]
    assert load_offences() is again


def test_8u_weight_is_imputed_between_stalking_and_aggravated_harassment(
    table: OffenceTable,
) -> None:
    cc, stalking, harassment = table.get("8U"), table.get("8Q"), table.get("8M")
    assert cc and stalking and harassment
    assert cc.weight_imputed
    assert cc.weight == pytest.approx((stalking.weight + harassment.weight) / 2)
    assert stalking.rank < cc.rank < harassment.rank
    assert [o.code for o in table if o.weight_imputed] == ["8U"]


def test_more_serious(table: OffenceTable) -> None:
    assert table.more_serious("8N", "105A") is True
    assert table.more_serious("105A", "8N") is False
    assert table.more_serious("8N", "8N") is False


def test_equal_weights_are_not_more_serious_either_way(table: OffenceTable) -> None:
    assert table.more_serious("34A", "34B") is False
    assert table.more_serious("34B", "34A") is False


@pytest.mark.parametrize(("a", "b"), [("8N", "XX"), ("XX", "8N"), ("XX", "YY")])
def test_unknown_code_is_not_comparable(table: OffenceTable, a: str, b: str) -> None:
    assert table.more_serious(a, b) is None


def test_most_serious(table: OffenceTable) -> None:
    assert table.most_serious(["105A", "8N", "58A"]) == "8N"
    assert table.most_serious(["XX", "105A"]) == "105A"
    assert table.most_serious(["XX"]) is None
    assert table.most_serious([]) is None
    # Equal weights: the code order decides, whatever the input order.
    assert table.most_serious(["34B", "34A"]) == table.most_serious(["34A", "34B"]) == "34A"


@pytest.mark.parametrize(
    ("code", "family"),
    [
        ("1", "violence"),
        ("8N", "violence"),
        ("105A", "violence"),
        ("8Q", "violence"),
        ("8U", "violence"),
        ("19C", "sexual"),
        ("20A", "sexual"),
        ("34B", "robbery"),
        ("28E", "burglary"),
        ("4.4", "other"),
        ("58A", "other"),
        ("92E", "other"),
    ],
)
def test_family(table: OffenceTable, code: str, family: str) -> None:
    offence = table.get(code)
    assert offence is not None and offence.family == family


def test_families_follow_groups(table: OffenceTable) -> None:
    for o in table:
        violent = o.group.startswith("Violence") or o.group == "Stalking and harassment"
        assert (o.family == "violence") == violent, o.code
        assert (o.family == "sexual") == (
            o.group in ("Sexual offences - Rape", "Other sexual offences")
        ), o.code


def test_rape_and_conduct_codes(table: OffenceTable) -> None:
    assert sorted(o.code for o in table if o.is_rape) == [
        "19C", "19D", "19E", "19F", "19G", "19H", "19J", "19K"
    ]  # fmt: skip
    assert sorted(o.code for o in table if o.is_conduct) == ["8L", "8M", "8Q", "8R", "8U"]


def test_aggravated_counterparts_are_known_codes(table: OffenceTable) -> None:
    assert AGGRAVATED["8N"] == "8P"
    assert {AGGRAVATED[c] for c in ("58A", "58B", "58C", "58D")} == {"58J"}
    for basic, aggravated in AGGRAVATED.items():
        assert basic in table and aggravated in table
        assert table.more_serious(aggravated, basic), (basic, aggravated)


# SHA-256 of the reference copy the packaged file was taken from, compared byte for byte
# when it was pinned. The file is meant to stay identical to that copy (see
# cdi_stream/data/README.md); an edit must come with a new reference and a new digest.
REFERENCE_SHA256 = "e174be6d276d004bea7e97291c28eee30dccba94108110170ff24cf8c1fe8d63"

COLUMNS = [
    "ho_code",
    "offence",
    "ho_offence_group",
    "victim_based",
    "ons_css_weight",
    "policeuk_category",
]


def test_packaged_csv_is_the_reference_file() -> None:
    assert hashlib.sha256(DATA.read_bytes()).hexdigest() == REFERENCE_SHA256


def test_every_row_is_loaded_as_written(table: OffenceTable) -> None:
    """Each code of each row, with the row's own data and a rank, and nothing else."""
    with DATA.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f, strict=True)
        assert reader.fieldnames == COLUMNS
        rows = list(reader)
    loaded: list[Offence] = []
    for row in rows:
        assert None not in row and all(row[c] is not None for c in COLUMNS), row
        assert row["policeuk_category"].strip(), row
        for code in row["ho_code"].split("/"):
            offence = table.get(code)
            assert offence is not None, code
            assert (offence.name, offence.group, offence.victim_based) == (
                row["offence"],
                row["ho_offence_group"],
                {"Y": True, "N": False}[row["victim_based"]],
            ), code
            if row["ons_css_weight"]:
                assert offence.weight == float(row["ons_css_weight"]) > 0, code
                assert not offence.weight_imputed, code
            else:
                assert offence.weight_imputed, code
            loaded.append(offence)
    assert sorted(o.rank for o in loaded) == list(range(len(table)))
