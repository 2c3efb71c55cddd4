"""The results table and the per-class figure name the classes, order them by training count and
name the worst ones."""

import torch

from lt_imbalance.callbacks.results_table import format_results_table
from lt_imbalance.plotting import per_class_figure

NAMES = ["bag", "boot", "coat", "dress"]
COUNTS = [20, 400, 5, 90]  # the data's (alphabetical) order is not the count order
ACC = [0.5, 0.98, 0.1, 0.8]


def test_table_rows_by_training_count_and_the_worst_classes_named():
    table = format_results_table("t", {"balanced_acc": 0.6}, ACC, COUNTS, NAMES, [10, 10, 10, 10])
    rows = [line.split("|")[1].strip() for line in table.splitlines() if line.startswith("| ") and line.count("|") == 5][1:]
    assert rows == ["boot", "dress", "bag", "coat"]
    assert table.strip().endswith("Worst classes: coat (10.00%), bag (50.00%), dress (80.00%).")


def test_figure_labels_classes_by_name_and_count_in_count_order():
    confusion = torch.diag(torch.tensor([5.0, 9.0, 1.0, 8.0])) + 1
    fig = per_class_figure(ACC, COUNTS, confusion, "t", NAMES)
    matrix = fig.axes[1]
    assert [t.get_text() for t in matrix.get_yticklabels()] == ["boot (400)", "dress (90)", "bag (20)", "coat (5)"]
    shown = matrix.images[0].get_array()
    assert abs(shown[0, 0] - 10 / 13) < 1e-9  # boot's row first: its correct share
    assert {t.get_text() for t in fig.axes[0].texts} == set(NAMES)  # the 5 worst (all 4 here) named on the accuracy panel


def test_classes_without_evaluation_images_are_named_and_left_out_of_the_class_counts():
    """A test folder lacking classes: the averages are over the classes that have images, and the table says so."""
    acc = [0.5, 0.98, float("nan"), float("nan")]
    table = format_results_table("t", {"balanced_acc": 0.74, "acc": 0.9}, acc, COUNTS, NAMES, [10, 10, 0, 0])
    assert "| balanced accuracy | 74.00 | 2 |" in table and "| top-1 accuracy | 90.00 | 2 |" in table
    assert "**2 of 4 classes have no evaluation images** (coat, dress): every average above is over the 2 classes" in table


def test_a_test_folder_lacking_classes_is_reported_through_the_command(tmp_path):
    from fakes import write_image_folder
    from lt_imbalance.cli import main

    train = write_image_folder(tmp_path / "train", {f"c{k}": 30 - 2 * k for k in range(5)}, size=8)
    test = write_image_folder(tmp_path / "test", {"c0": 4, "c3": 4}, size=8, seed=1)
    main(
        [
            "fit",
            "--data",
            "ImageFolderLT",
            "--data.root",
            str(train),
            "--data.test_root",
            str(test),
            "--data.image_size",
            "8",
            "--data.batch_size",
            "16",
        ]
        + ["--model.backbone", "digits_cnn", "--trainer.max_epochs", "1", "--trainer.default_root_dir", str(tmp_path / "runs")]
    )
    out = next((tmp_path / "runs").rglob("results_test.md")).read_text()
    assert "test set (classes missing, 8 images)" in out
    assert "**3 of 5 classes have no evaluation images** (c1, c2, c4)" in out and "| balanced accuracy |" in out
