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
