"""Tuning by cross-validated grid search or successive halving (the seed's TuneTask, no UI).

scikit-learn decides *what* to fit: ``ParameterGrid`` enumerates the combinations,
``StratifiedKFold`` makes the folds, ``clone`` copies Keras's own
``keras.wrappers.SKLearnClassifier`` per fit, and the halving schedule is
``HalvingGridSearchCV``'s. Our loop decides *when*: it runs one fold at a time, so that

- each fold streams its held-out accuracy and loss (``FoldEnd``) as it finishes;
- a stop ends the fit in progress at the next batch and discards only that fit;
- a combination whose layers cannot fit the image size (the check training makes,
  ``architecture_problem``) is marked invalid before anything runs (``CombinationInvalid``),
  never fitted and never ranked; when every combination is invalid the search refuses to
  start (``InvalidGridError``) naming the field and its values;
- a combination that fails while it runs (out of memory) is recorded once
  (``CombinationFailed``) and skipped, not retried per fold; one whose fold diverges (a
  NaN loss, or accuracy back at chance, training's rule) is recorded the same way,
  marked diverged (``CombinationDiverged``, ``CombinationFailed.diverged``), and does not
  count towards the failures in a row; anything else is a ``FatalTuningError`` and
  stops the search;
- every finished fold is appended to ``folds.jsonl`` in the run folder, so an interrupted
  search resumes with only the folds not yet done (``resume_from=``).

Inside ``GridSearchCV`` none of this is possible (a stop is scored as a finished fold or
swallowed as a failed fit, and nothing resumes), yet our table keeps its ``cv_results_``
columns and gives the same scores on the same folds and seeds (see the tests).

Every fit uses the same seed (``keras.utils.set_random_seed(hyper_params.seed)`` before the
model is built), so a fold's score does not depend on the order fits ran in or on a resume.

The package splits the search as keras-tuner splits its Oracle from its Tuner:
``plan`` (candidates, halving schedule, promotion, combination states; rebuilt from the
fold records on resume), ``folds`` (fit and score one fold), ``search`` (the loop),
``results`` (the ``cv_results_`` table), ``store`` (folds.jsonl and the failures'
tracebacks), ``errors`` and ``events``; ``executor`` runs each rung's folds (in this
process by default; ``ray_executor`` on Ray actors, imported only for a Ray search) and
``sink`` turns what it reports into the records and events above. After
``MAX_CONSECUTIVE_FAILURES`` combinations fail in a row the search stops
(``TooManyFailures``), keeping what finished.
"""

from __future__ import annotations

from convonet.core.tuning.data import cv_splitter, tuning_data
from convonet.core.tuning.errors import (
    CombinationDiverged,
    CombinationError,
    FatalTuningError,
    InvalidGridError,
    NonFiniteLoss,
    TooManyFailures,
    TuningError,
    failure_reason,
)
from convonet.core.tuning.estimator import BuildFn, ModelReuse, flat_model, make_estimator
from convonet.core.tuning.events import (
    CombinationFailed,
    CombinationInvalid,
    ExecutorReady,
    FoldEnd,
    FoldProgress,
    FoldRequeued,
    FoldStart,
    RungStart,
    TuneStart,
    WorkerInfo,
)
from convonet.core.tuning.executor import Executor, FoldJob, InProcessExecutor
from convonet.core.tuning.folds import FoldRunner, _log_loss, fit_params
from convonet.core.tuning.plan import HALVING_FACTOR, STRATEGIES, SearchPlan, halving_schedule
from convonet.core.tuning.results import TuneResult, read_results
from convonet.core.tuning.search import (
    MAX_CONSECUTIVE_FAILURES,
    TASK,
    Tuner,
    quiet_tensorflow_logger,
    search_recorded,
    tune,
)
from convonet.core.tuning.store import FAILURES_DIR, RunStore, SearchStore

__all__ = [
    "FAILURES_DIR", "HALVING_FACTOR", "MAX_CONSECUTIVE_FAILURES", "STRATEGIES", "TASK",
    "BuildFn", "CombinationDiverged", "CombinationError", "CombinationFailed", "CombinationInvalid",
    "Executor", "ExecutorReady", "FatalTuningError", "FoldJob", "InProcessExecutor",
    "FoldEnd", "FoldProgress", "FoldRequeued", "FoldStart",
    "FoldRunner", "InvalidGridError", "ModelReuse",
    "NonFiniteLoss", "RunStore", "RungStart", "SearchPlan", "SearchStore", "TooManyFailures",
    "TuneResult", "TuneStart", "Tuner", "TuningError", "_log_loss", "cv_splitter",
    "failure_reason", "fit_params", "flat_model", "halving_schedule", "make_estimator",
    "quiet_tensorflow_logger", "read_results", "search_recorded", "tune", "tuning_data",
    "WorkerInfo",
]
