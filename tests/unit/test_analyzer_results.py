"""Model Analyzer's results -> the best configuration -> ``tritonclf build`` options."""

from __future__ import annotations

from pathlib import Path

import pytest

from tritonclf.repository import build_cli
from tritonclf.repository.pbtxt import DynamicBatching, InstanceGroup, ModelSpec, Tensor, render, to_model_config
from tritonclf_lab.bench.analyzer_results import (
    ChosenConfig,
    Measurement,
    ResultError,
    best,
    build_arguments,
    build_command,
    config_role,
    distinct_configs,
    read_config,
    read_measurements,
)

# Header and rows as Model Analyzer 1.58 wrote them for the classifier on this machine.
HEADER = (
    "Model,Batch,Concurrency,Model Config Path,Instance Group,Max Batch Size,Satisfies Constraints,"
    "Throughput (infer/sec),p99 Latency (ms),RAM Usage (MB)"
)
CSV = f"""\
{HEADER}
efficientnet_lite0_model,1,1,efficientnet_lite0_model_config_default,2:CPU,32,Yes,15.1,112.9,18.0
efficientnet_lite0_model,1,2,efficientnet_lite0_model_config_1,1:CPU,2,Yes,13.4,331.1,21.0
efficientnet_lite0_model,1,2,efficientnet_lite0_model_config_0,1:CPU,1,No,22.4,977.1,18.0
efficientnet_lite0_model,1,1,efficientnet_lite0_model_config_0,1:CPU,1,Yes,10.2,139.5,15.0
"""


def measurements(tmp_path: Path, text: str = CSV) -> list[Measurement]:
    path = tmp_path / "metrics-model-inference.csv"
    path.write_text(text)
    return read_measurements(path)


def write_config(folder: Path, instances: int, max_batch_size: int, delay_us: int, preferred=()) -> Path:
    spec = ModelSpec(
        name=folder.name,
        backend="python",
        max_batch_size=max_batch_size,
        inputs=(Tensor("pixel_values", "TYPE_FP32", (3, 224, 224)),),
        outputs=(Tensor("probabilities", "TYPE_FP32", (1000,)),),
        instance_groups=(InstanceGroup(instances, "KIND_CPU"),),
        dynamic_batching=DynamicBatching(delay_us, preferred_batch_sizes=tuple(preferred)),
    )
    folder.mkdir(parents=True)
    (folder / "config.pbtxt").write_text(render(to_model_config(spec)))
    return folder / "config.pbtxt"


def test_rows_are_read_with_their_config_and_numbers(tmp_path):
    rows = measurements(tmp_path)
    assert len(rows) == 4
    assert rows[0] == Measurement(
        model="efficientnet_lite0_model",
        config_name="efficientnet_lite0_model_config_default",
        config_names=("efficientnet_lite0_model_config_default",),
        concurrency=1,
        throughput=15.1,
        latency_p99_ms=112.9,
        satisfies_constraints=True,
    )


def test_an_ensemble_row_names_every_composing_config(tmp_path):
    # As Model Analyzer 1.58 writes an ensemble's row (result_table_manager: "NAME: a, b").
    names = "efficientnet_lite0_config_3: efficientnet_lite0_preprocess_config_2, efficientnet_lite0_model_config_1"
    row = f'efficientnet_lite0,1,4,"{names}",x,4,Yes,30,90,1'
    (only,) = measurements(tmp_path, f"{HEADER}\n{row}\n")
    assert only.config_name == "efficientnet_lite0_config_3"
    assert only.config_names == ("efficientnet_lite0_preprocess_config_2", "efficientnet_lite0_model_config_1")


def test_best_is_the_fastest_row_that_satisfies_the_constraints(tmp_path):
    chosen = best(measurements(tmp_path))
    assert chosen.config_names == ("efficientnet_lite0_model_config_default",)


def test_repeated_measurements_of_one_config_and_concurrency_are_averaged(tmp_path):
    repeat = "efficientnet_lite0_model,1,1,efficientnet_lite0_model_config_default,2:CPU,32,Yes,5.1,132.9,18.0\n"
    chosen = best(measurements(tmp_path, CSV + repeat))
    assert chosen.config_name == "efficientnet_lite0_model_config_1"  # 13.4 beats (15.1 + 5.1) / 2
    assert chosen.throughput == pytest.approx(13.4)


def test_no_row_within_the_constraints_is_an_error(tmp_path):
    rows = [m for m in measurements(tmp_path) if not m.satisfies_constraints]
    with pytest.raises(ResultError, match="satisfies the constraints"):
        best(rows)


def test_every_measured_configuration_is_listed_once_in_order(tmp_path):
    assert distinct_configs(measurements(tmp_path)) == [
        "efficientnet_lite0_model_config_default",
        "efficientnet_lite0_model_config_1",
        "efficientnet_lite0_model_config_0",
    ]


def test_missing_results_say_model_analyzer_measured_nothing(tmp_path):
    with pytest.raises(ResultError, match="measured nothing"):
        read_measurements(tmp_path / "absent.csv")


def test_config_pbtxt_gives_instances_batch_and_queue_delay(tmp_path):
    path = write_config(tmp_path / "efficientnet_lite0_model_config_3", 3, 8, 500, preferred=(4, 8))
    assert read_config(path) == ChosenConfig(
        instances=3, max_batch_size=8, max_queue_delay_microseconds=500, preferred_batch_sizes=(4, 8)
    )


def test_config_names_map_to_our_two_models():
    assert config_role("efficientnet_lite0_preprocess_config_4", "efficientnet_lite0") == "preprocess"
    assert config_role("efficientnet_lite0_model_config_default", "efficientnet_lite0") == "classifier"
    with pytest.raises(ResultError, match="neither model"):
        config_role("resnet50_model_config_1", "efficientnet_lite0")


def test_ensemble_result_sets_both_instance_counts_both_delays_and_the_smaller_batch():
    arguments = build_arguments(
        {
            "preprocess": ChosenConfig(
                instances=1, max_batch_size=16, max_queue_delay_microseconds=0, preferred_batch_sizes=()
            ),
            "classifier": ChosenConfig(
                instances=2, max_batch_size=8, max_queue_delay_microseconds=2000, preferred_batch_sizes=(4, 16)
            ),
        }
    )
    assert arguments == [
        "--preprocess-instances",
        "1",
        "--max-queue-delay-us",
        "0",
        "--classifier-instances",
        "2",
        "--classifier-queue-delay-us",
        "2000",
        "--max-batch-size",
        "8",
        "--preferred-batch-sizes",
        "4",
    ]


def test_build_options_are_ones_tritonclf_build_accepts():
    arguments = build_arguments({"classifier": ChosenConfig(3, 4, 100, (2, 4))})
    args = build_cli.parse_args(["--export", "exports/x", *arguments])
    assert (args.classifier_instances, args.max_batch_size, args.classifier_queue_delay_us) == (3, 4, 100)
    assert args.preferred_batch_sizes == (2, 4)


def test_printed_command_is_the_whole_build_line():
    command = build_command(Path("exports/m"), Path("model_repository"), "python-ort", ["--max-batch-size", "8"])
    assert command == (
        "tritonclf build --export exports/m --repository model_repository --backend python-ort --max-batch-size 8"
    )
