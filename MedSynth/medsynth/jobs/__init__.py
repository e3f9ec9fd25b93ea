"""Progress reporting, cancellation and resumable batch runs for long operations."""

from medsynth.jobs.batch import BatchItem, run_batch
from medsynth.jobs.progress import CancelToken, ProgressCallback, report, sub_progress

__all__ = ["BatchItem", "CancelToken", "ProgressCallback", "report", "run_batch", "sub_progress"]
