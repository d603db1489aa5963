"""Invalid requests raise the modelled exception classes in every protocol, with the awsQuery error codes
CloudWatch documents, and change nothing."""

from __future__ import annotations

import datetime as dt

import pytest

import harness


def assert_error(excinfo, code: str, status: int = 400):
    err = excinfo.value.response
    assert err["Error"]["Code"] == code, err
    assert err["ResponseMetadata"]["HTTPStatusCode"] == status, err
    assert err["Error"].get("Message"), "errors carry a message"
    assert err["ResponseMetadata"].get("RequestId"), "errors carry a request id"


def namespace_is_empty(cw, namespace) -> bool:
    return cw.list_metrics(Namespace=namespace)["Metrics"] == []


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")], ids=["nan", "inf", "-inf"])
def test_non_finite_value_is_invalid(cw, namespace, bad):
    with pytest.raises(cw.exceptions.InvalidParameterValueException) as e:
        cw.put_metric_data(Namespace=namespace, MetricData=[{"MetricName": "M", "Value": bad}])
    assert_error(e, "InvalidParameterValue")
    assert namespace_is_empty(cw, namespace)


def test_bad_storage_resolution_is_invalid(cw, namespace):
    with pytest.raises(cw.exceptions.InvalidParameterValueException) as e:
        cw.put_metric_data(Namespace=namespace, MetricData=[{"MetricName": "M", "Value": 1, "StorageResolution": 5}])
    assert_error(e, "InvalidParameterValue")
    assert namespace_is_empty(cw, namespace)


def test_counts_must_match_values(cw, namespace):
    # AWS documents the rule (Counts, when given, has one entry per Values entry) but not which of the
    # two parameter errors it answers with; either modelled one is a correct answer.
    with pytest.raises((cw.exceptions.InvalidParameterValueException,
                        cw.exceptions.InvalidParameterCombinationException)) as e:
        cw.put_metric_data(Namespace=namespace, MetricData=[
            {"MetricName": "M", "Values": [1.0, 2.0, 3.0], "Counts": [1.0, 1.0]}])
    assert_error(e, e.value.response["Error"]["Code"])
    assert e.value.response["Error"]["Code"] in ("InvalidParameterValue", "InvalidParameterCombination")
    assert namespace_is_empty(cw, namespace)


def test_value_with_statistic_values_is_a_bad_combination(cw, namespace):
    with pytest.raises(cw.exceptions.InvalidParameterCombinationException) as e:
        cw.put_metric_data(Namespace=namespace, MetricData=[{
            "MetricName": "M", "Value": 1,
            "StatisticValues": {"SampleCount": 1, "Sum": 1, "Minimum": 1, "Maximum": 1}}])
    assert_error(e, "InvalidParameterCombination")
    assert namespace_is_empty(cw, namespace)


def test_one_bad_datum_rejects_the_whole_request(cw, namespace):
    with pytest.raises(cw.exceptions.InvalidParameterValueException):
        cw.put_metric_data(Namespace=namespace, MetricData=[
            {"MetricName": "Good", "Value": 1},
            {"MetricName": "Bad", "Value": float("nan")},
        ])
    assert namespace_is_empty(cw, namespace), "a rejected request must change nothing"


def test_missing_required_member(server, model_dirs, protocol, namespace):
    # botocore validates required members client-side; turn that off so the server sees the request.
    cw = harness.client(server, model_dirs[protocol], protocol, parameter_validation=False)
    with pytest.raises(cw.exceptions.MissingRequiredParameterException) as e:
        cw.put_metric_data(Namespace=namespace, MetricData=[{"Value": 1}])
    assert_error(e, "MissingParameter")
    with pytest.raises(cw.exceptions.MissingRequiredParameterException) as e:
        cw.put_metric_data(MetricData=[{"MetricName": "M", "Value": 1}])
    assert_error(e, "MissingParameter")
    assert namespace_is_empty(cw, namespace)


def test_statistics_or_extended_statistics_required(cw, namespace):
    now = dt.datetime.now(dt.timezone.utc)
    with pytest.raises(cw.exceptions.InvalidParameterCombinationException) as e:
        cw.get_metric_statistics(Namespace=namespace, MetricName="M", StartTime=now - dt.timedelta(hours=1),
                                 EndTime=now, Period=60)
    assert_error(e, "InvalidParameterCombination")
