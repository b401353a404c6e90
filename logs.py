"""What a run tells the person waiting for it: progress lines that reach a log file at once,
the time left, and every number of metrics.jsonl also as TensorBoard events.

- `say`: one flushed line (rank 0 only under torchrun);
- `duration_text`, `eta_text`, `Progress`: the estimated time to finish, from the wall clock and
  a count of steps (no tensor is read, so no host-device sync);
- `Scalars`: TensorBoard event files beside metrics.jsonl.

Nothing here parses arguments, seeds or prints at import.
"""
import glob
import os
import sys
import time

import dist


def say(text):
    """Print a progress line now: flushed, because stdout into a log file (run_all.sh, nohup) is
    block-buffered and would hold it back for hours; above a live tqdm bar, if there is one."""
    if not dist.is_main():  # under torchrun rank 0 speaks for all
        return
    from tqdm import tqdm
    tqdm.write(text, file=sys.stdout)
    sys.stdout.flush()


def duration_text(seconds):
    """A duration as a person reads it: '40 s', '25 min', '12 h 40 min', '3 d 4 h'."""
    if round(seconds) < 90:
        return f"{max(0, round(seconds))} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    if minutes < 24 * 60:
        return f"{minutes // 60} h {minutes % 60} min"
    hours = round(seconds / 3600)
    return f"{hours // 24} d {hours % 24} h"


def eta_text(done_steps, total_steps, seconds, images=None):
    """'about 12 h 40 min to go at 53 img/s': the time left of `total_steps` steps when the first
    `done_steps` of them took `seconds`, at the same pace; `images` (processed in those seconds)
    adds the rate."""
    if done_steps <= 0 or seconds <= 0:
        raise ValueError(f"nothing timed yet ({done_steps} steps in {seconds} s)")
    left = seconds * max(0, total_steps - done_steps) / done_steps
    rate = f" at {images / seconds:,.0f} img/s" if images else ""
    return f"about {duration_text(left)} to go{rate}"


class Progress:
    """When a training loop will finish, from the wall clock and a count of steps only: it reads
    no tensor, so it adds no host-device sync.

    On a CPU the first estimates come early (step): after each count of `early` steps past the
    first one, which pays for warm-up and is not timed (a rough one from a single step, then a
    better one), and only for a run with at least `min_left` seconds to go. On a
    GPU the host runs ahead of the queued work, so a time read inside an epoch says little: there
    the first estimate (eta) comes at the end of the first epoch, where the loop reads its loss
    and so waits for the GPU anyway.
    """

    def __init__(self, total_steps, done_steps, device, early=(1, 10), min_left=60, clock=time.monotonic):
        self.left = total_steps - done_steps  # the steps this process will run
        self.early = (tuple(early) if isinstance(early, (tuple, list)) else (early,)) if device.type == "cpu" else ()
        self.min_left, self.clock = min_left, clock
        self.steps = self.images = 0
        self.t0 = clock()
        self.mark = None  # (time, images) at the end of the first step

    def step(self, images):
        """Count one step of `images` images (a Python int: len(batch), not a tensor). Returns the
        early estimate once, when it is due, else None."""
        self.steps += 1
        self.images += images
        if not self.early:
            return None
        if self.steps == 1:
            self.mark = (self.clock(), self.images)
        elif self.steps == 1 + self.early[0]:
            n, self.early = self.early[0], self.early[1:]
            t, images_then = self.mark
            seconds = max(self.clock() - t, 1e-9)
            if seconds * (self.left - 1 - n) / n >= self.min_left:
                timed = "first step timed (a rough guess)" if n == 1 else f"first {n} steps timed"
                return f"{timed}: " + eta_text(n, self.left - 1, seconds, self.images - images_then)
        return None

    def eta(self, with_rate=False):
        """The time left, from every step of this process so far (call where the loop syncs
        anyway, e.g. after reading an epoch's loss); '' once every step is done."""
        if not self.steps or self.steps >= self.left:
            return ""
        return eta_text(self.steps, self.left, max(self.clock() - self.t0, 1e-9),
                        self.images if with_rate else None)


def say_time_left(what, total_images):
    """A `timed` callback for common.extract_features: once the second batch is timed, say
    '<what>: about 40 s at 1,500 img/s' for `total_images`, when that is longer than a few seconds."""
    def timed(images, seconds):
        left = seconds * total_images / max(images, 1)
        if left >= 5:
            say(f"{what}: about {duration_text(left)} at {images / max(seconds, 1e-9):,.0f} img/s")
    return timed


def kept_text(run_dir):
    """What an interrupted run leaves to resume from, truthfully: the checkpoint in `run_dir` that
    the same command resumes from, or that nothing was saved yet."""
    saved = sorted(glob.glob(os.path.join(run_dir, "checkpoint*.pt"))) if run_dir else []
    if saved:
        return f"{saved[0]} holds the last finished epoch: start the same command again to resume from it"
    return "no epoch had finished, so nothing was saved to resume from: the same command starts again from the beginning"


class Scalars:
    """The numbers of metrics.jsonl also as TensorBoard event files in `log_dir`, so that
    `tensorboard --logdir runs/quick` shows a whole grid side by side. Resuming passes the step
    it restarts from (`resume_step`): TensorBoard then hides what the interrupted run wrote
    after it, as metrics.jsonl drops those lines. Without the tensorboard package it says so
    once and writes nothing."""

    def __init__(self, log_dir, prefix, resume_step=None):
        self.prefix, self.writer = prefix, None
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            say("tensorboard is not installed: no event files (pip install tensorboard)")
            return
        self.writer = SummaryWriter(log_dir, purge_step=resume_step)

    def add(self, record, step):
        """Every number of `record` but the counters, at `step`."""
        if self.writer is None:
            return
        for key, value in record.items():
            if key not in ("epoch", "step") and isinstance(value, (int, float)):
                self.writer.add_scalar(f"{self.prefix}/{key}", value, step)
        self.writer.flush()

    def close(self):
        if self.writer is not None:
            self.writer.close()
