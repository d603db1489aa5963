"""Request compression: botocore gzips PutMetricData bodies above `request_min_compression_size_bytes`;
the server must accept them in every protocol (and the test checks the body really was gzipped)."""

from __future__ import annotations

import datetime as dt


def test_gzip_put_metric_data(server, make_client, namespace):
    cw = make_client(server, request_min_compression_size_bytes=128)
    sent = []

    def record(request, **_):
        value = request.headers.get("Content-Encoding")
        sent.append(value.decode() if isinstance(value, bytes) else value)

    cw.meta.events.register("before-send.cloudwatch.PutMetricData", record)
    t = dt.datetime.now(dt.timezone.utc).replace(second=0, microsecond=0) - dt.timedelta(minutes=5)
    cw.put_metric_data(Namespace=namespace, MetricData=[
        {"MetricName": "Zipped", "Dimensions": [{"Name": "Shard", "Value": str(i)}], "Timestamp": t,
         "Value": float(i), "Unit": "Count"} for i in range(50)])
    assert sent == ["gzip"], f"the client did not compress: {sent}"

    total = 0.0
    for i in range(0, 50, 7):
        resp = cw.get_metric_statistics(Namespace=namespace, MetricName="Zipped",
                                        Dimensions=[{"Name": "Shard", "Value": str(i)}], StartTime=t,
                                        EndTime=t + dt.timedelta(minutes=1), Period=60, Statistics=["Sum"])
        assert [p["Sum"] for p in resp["Datapoints"]] == [float(i)]
        total += resp["Datapoints"][0]["Sum"]
    assert total == sum(range(0, 50, 7))
    assert len(cw.list_metrics(Namespace=namespace)["Metrics"]) == 50
