"""Workers that open a new study database at the same moment all get it."""

import multiprocessing

import optuna

from lt_imbalance.tuning.storage import open_storage


def _open_and_join(url: str, barrier, results) -> None:
    barrier.wait()  # all workers create the database at once
    try:
        optuna.create_study(storage=open_storage(url), study_name="shared", load_if_exists=True)
        results.put("ok")
    except Exception as error:  # noqa: BLE001 - the test reports what went wrong
        results.put(repr(error)[:200])


def test_simultaneous_workers_on_a_new_sqlite_database(tmp_path):
    ctx = multiprocessing.get_context("fork")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    outcomes = []
    for round_ in range(3):  # without the retry, about a third of the workers failed here
        url = f"sqlite:///{tmp_path / f'study{round_}.db'}"
        barrier, results = ctx.Barrier(4), ctx.Queue()
        workers = [ctx.Process(target=_open_and_join, args=(url, barrier, results)) for _ in range(4)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=120)
        outcomes += [results.get(timeout=10) for _ in workers]
        assert len(optuna.get_all_study_summaries(url)) == 1
    assert outcomes == ["ok"] * 12
