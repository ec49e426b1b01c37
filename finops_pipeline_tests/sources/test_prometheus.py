from __future__ import annotations

import math

import pytest

from finops_pipeline.sources.prometheus import PrometheusQueryError, parse_matrix
from finops_pipeline_tests.conftest import realdata


def test_nan_strings_from_a_real_server_parse_as_nan():
    series = parse_matrix(
        realdata("api-bodies/prym-test-query-range-nan-real.json").read_bytes(), "t"
    )
    values = [float(v) for _, v in series[1].values]
    assert sum(math.isnan(v) for v in values) == 7
    assert len(values) == 11


def test_docs_matrix_example_parses():
    series = parse_matrix(
        realdata("api-bodies/prometheus-docs-api-query-range-up.json").read_bytes(), "t"
    )
    assert series and all(s.values for s in series)


def test_error_envelope_names_the_error():
    body = b'{"status":"error","errorType":"bad_data","error":"parse error"}'
    with pytest.raises(PrometheusQueryError, match="bad_data: parse error"):
        parse_matrix(body, "q")
