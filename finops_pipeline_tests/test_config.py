from __future__ import annotations

import pytest

from finops_pipeline.config import DEMO_CONFIG, ConfigError, load_fleet


def test_demo_fleet_file_is_valid():
    fleet = load_fleet(DEMO_CONFIG)
    assert [c.name for c in fleet.clusters] == ["idc-fra", "aws-use1", "gcp-euw1"]
    assert fleet.clusters[0].allocation.verify_tls is True


@pytest.mark.parametrize(
    ("patch", "key", "allowed"),
    [
        ("provider: idc", "clusters.0.provider", "'idc', 'aws', 'gcp' or 'azure'"),
        ("kind: kubecost", "clusters.0.allocation.kind", "'kubecost' or 'opencost'"),
        ("idle: spread", "allocation_rules.idle", "'spread' or 'separate'"),
    ],
)
def test_bad_values_name_file_key_and_allowed_values(tmp_path, patch, key, allowed):
    text = DEMO_CONFIG.read_text().replace(patch, patch.split(":")[0] + ": nonsense", 1)
    path = tmp_path / "fleet.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_fleet(path)
    msg = str(err.value)
    assert str(path) in msg and key in msg and allowed in msg


def test_unknown_key_and_duplicate_cluster_are_rejected(tmp_path):
    path = tmp_path / "f.yaml"
    path.write_text(DEMO_CONFIG.read_text().replace("currency: USD", "currency: USD\ncolour: blue"))
    with pytest.raises(ConfigError, match="colour"):
        load_fleet(path)
    path.write_text(DEMO_CONFIG.read_text().replace("aws-use1", "idc-fra"))
    with pytest.raises(ConfigError, match="repeated: idc-fra"):
        load_fleet(path)


def test_named_token_variable_must_be_set(monkeypatch):
    from finops_pipeline.config import bearer_token

    monkeypatch.delenv("FINOPS_TEST_TOKEN", raising=False)
    with pytest.raises(ConfigError, match="FINOPS_TEST_TOKEN"):
        bearer_token("FINOPS_TEST_TOKEN")


def _patched(tmp_path, old: str, new: str):
    path = tmp_path / "fleet.yaml"
    text = DEMO_CONFIG.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    return path


def test_a_key_given_twice_is_an_error_not_an_overwrite(tmp_path):
    path = _patched(tmp_path, "currency: USD", "currency: USD\ncurrency: EUR")
    with pytest.raises(ConfigError, match="key 'currency' given twice"):
        load_fleet(path)


def test_two_clusters_on_one_allocation_endpoint_are_refused(tmp_path):
    path = _patched(tmp_path, "9003/gcp-euw1", "9003/aws-use1")
    with pytest.raises(ConfigError, match="aws-use1 and gcp-euw1 have the same allocation.url"):
        load_fleet(path)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("http://127.0.0.1:9003/idc-fra", "http://user:secret@127.0.0.1:9003/idc-fra", "user:"),
        ("http://127.0.0.1:9003/idc-fra", "http://127.0.0.1:9003/idc-fra?x=1", r"\?query"),
        ("kind: kubecost}", "kind: kubecost, cluster_id: ''}", "at least 1 character"),
        ("default_team: unassigned", "default_team: ''", "at least 1 character"),
    ],
)
def test_urls_with_credentials_or_queries_and_empty_names_are_refused(tmp_path, old, new, message):
    with pytest.raises(ConfigError, match=message):
        load_fleet(_patched(tmp_path, old, new))


def test_a_metric_name_cannot_carry_promql(tmp_path):
    path = _patched(
        tmp_path,
        "selector: 'cluster=\"idc-fra\"'}",
        "selector: 'cluster=\"idc-fra\"', cpu_usage_metric: 'up) or vector(1'}",
    )
    with pytest.raises(ConfigError, match="clusters.0.prometheus.cpu_usage_metric"):
        load_fleet(path)


def test_an_unset_token_variable_is_named_with_file_and_key_before_any_fetch(tmp_path, monkeypatch):
    monkeypatch.delenv("FINOPS_TEST_NO_SUCH_TOKEN", raising=False)
    path = _patched(
        tmp_path, "kind: opencost}", "kind: opencost, bearer_token_env: FINOPS_TEST_NO_SUCH_TOKEN}"
    )
    fleet = load_fleet(path)  # loading alone does not need the token
    fleet.check_tokens(["idc-fra"])  # nor does a run over other clusters
    with pytest.raises(ConfigError) as err:
        fleet.check_tokens()
    assert str(err.value) == (
        f"{path}: clusters.1.allocation.bearer_token_env (aws-use1): environment variable "
        "FINOPS_TEST_NO_SUCH_TOKEN is not set or empty"
    )
