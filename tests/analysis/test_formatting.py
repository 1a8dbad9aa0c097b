"""String views of the report's tables."""

import math

import pandas as pd

from samia.analysis.formatting import MISSING, interval, markdown_table, number, p_value


def test_numbers_p_values_and_intervals():
    assert number(0.12345) == "0.123" and number(math.nan) == MISSING and number(5.0, 1) == "5.0"
    assert p_value(0.0421) == "0.042" and p_value(3.14e-7) == "3.1e-07" and p_value(math.nan) == MISSING
    assert interval(0.1, 0.25) == "[0.100, 0.250]" and interval(math.nan, 1.0) == MISSING


def test_markdown_table_escapes_pipes():
    view = pd.DataFrame({"object": ["a|b", "c"], "Dice": ["0.500", "0.250"]})
    assert markdown_table(view) == "| object | Dice |\n|---|---|\n| a\\|b | 0.500 |\n| c | 0.250 |\n"
