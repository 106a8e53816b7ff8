"""The PNG plots of a packet (matplotlib, drawn off-screen with the Agg canvas).

- ``activity.png``: requests per day (per hour for short spans) and active
  accounts, with the newest model's first appearance in the logs marked;
- ``heatmap.png``: requests by hour of day and weekday (UTC);
- ``creation.png``: accounts created per day;
- ``adoption.png``: share of the cluster's accounts that have used each
  model, over time, with the same release mark.

Figures are built with :class:`matplotlib.figure.Figure` and
:class:`~matplotlib.backends.backend_agg.FigureCanvasAgg` directly, so the
global pyplot backend of a notebook is left alone, and saved without the
software version metadata, so the same data gives the same bytes.
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd

WEEKDAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
PLOTS = ("activity", "heatmap", "creation", "adoption")
_DPI = 100


def _figure(w: float = 8.0, h: float = 3.6):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(w, h), dpi=_DPI)
    fig.subplots_adjust(left=0.09, right=0.9, bottom=0.2, top=0.9)  # fixed margins: much faster than a layout engine
    FigureCanvasAgg(fig)
    return fig


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=_DPI, metadata={"Software": None})
    return buf.getvalue()


def _naive(ts: pd.Series | pd.Timestamp):
    """UTC timestamps without the time zone (matplotlib's date axis then reads them as UTC)."""
    if isinstance(ts, pd.Timestamp):
        return ts.tz_convert("UTC").tz_localize(None) if ts.tzinfo else ts
    s = pd.to_datetime(ts, utc=True)
    return s.dt.tz_localize(None)


def _mark_release(ax, release: tuple[str, pd.Timestamp] | None, lo, hi) -> None:
    if release is None:
        return
    model, when = release
    when = _naive(when)
    if lo is not None and hi is not None and not (lo <= when <= hi):
        return
    ax.axvline(when, color="#d62728", linestyle="--", linewidth=1.2, label=f"{model} first seen")


def _empty(fig, title: str) -> bytes:
    ax = fig.add_subplot()
    ax.set_axis_off()
    ax.text(0.5, 0.5, "no activity", ha="center", va="center")
    ax.set_title(title)
    return _png(fig)


def activity_png(activity: pd.DataFrame, release, title: str) -> bytes:
    """Requests and active accounts over time; the new model's release as a dashed line."""
    fig = _figure()
    if activity.empty:
        return _empty(fig, title)
    hours = _naive(activity["hour"])
    span = hours.max() - hours.min()
    step = "h" if span <= pd.Timedelta(days=3) else "D"
    t = hours.dt.floor(step)
    req = activity["requests"].groupby(t).sum()
    acc = activity["node"].groupby(t).nunique()
    full = pd.date_range(req.index.min(), req.index.max(), freq=step)
    req, acc = req.reindex(full, fill_value=0), acc.reindex(full, fill_value=0)
    ax = fig.add_subplot()
    ax.fill_between(req.index, req.to_numpy(), step="mid", color="#1f77b4", alpha=0.35)
    ax.plot(req.index, req.to_numpy(), drawstyle="steps-mid", color="#1f77b4", linewidth=1,
            label=f"requests per {'hour' if step == 'h' else 'day'}")
    ax.set_ylabel("requests")
    ax2 = ax.twinx()
    ax2.plot(acc.index, acc.to_numpy(), color="#ff7f0e", linewidth=1.2, label="active accounts")
    ax2.set_ylabel("active accounts")
    ax2.set_ylim(bottom=0)
    _mark_release(ax, release, full.min() - pd.Timedelta(days=1), full.max() + pd.Timedelta(days=1))
    lines = ax.get_legend_handles_labels()
    lines2 = ax2.get_legend_handles_labels()
    ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], loc="upper left", fontsize=8)
    ax.set_title(title)
    fig.autofmt_xdate()
    return _png(fig)


def heatmap_png(activity: pd.DataFrame, title: str) -> bytes:
    """Requests by weekday (rows) and hour of day (columns), UTC."""
    fig = _figure(8.0, 3.2)
    if activity.empty:
        return _empty(fig, title)
    hours = pd.to_datetime(activity["hour"], utc=True)
    grid = np.zeros((7, 24))
    np.add.at(grid, (hours.dt.day_of_week.to_numpy(), hours.dt.hour.to_numpy()), activity["requests"].to_numpy())
    ax = fig.add_subplot()
    im = ax.imshow(grid, aspect="auto", cmap="viridis", interpolation="nearest")
    ax.set_yticks(range(7), WEEKDAYS)
    ax.set_xticks(range(0, 24, 2), [f"{h:02d}" for h in range(0, 24, 2)])
    ax.set_xlabel("hour of day (UTC)")
    fig.colorbar(im, ax=ax, label="requests", fraction=0.04, pad=0.02)
    ax.set_title(title)
    return _png(fig)


def creation_png(created: pd.Series, title: str) -> bytes:
    """Accounts created per day (a batch shows as one tall bar)."""
    fig = _figure()
    c = _naive(created.dropna())
    if c.empty:
        return _empty(fig, title)
    day = c.dt.floor("D")
    counts = day.value_counts().sort_index()
    full = pd.date_range(counts.index.min(), counts.index.max(), freq="D")
    if len(full) > 400:  # a long tail of old accounts: weekly bars
        counts = c.dt.to_period("W").dt.start_time.value_counts().sort_index()
        full = pd.date_range(counts.index.min(), counts.index.max(), freq="7D")
        width = 6.0
    else:
        width = 0.9
    counts = counts.reindex(full, fill_value=0)
    ax = fig.add_subplot()
    ax.bar(counts.index, counts.to_numpy(), width=width, color="#2ca02c")
    ax.set_ylabel("accounts created")
    ax.set_title(title)
    fig.autofmt_xdate()
    return _png(fig)


def adoption_png(activity: pd.DataFrame, n_accounts: int, release, title: str) -> bytes:
    """Per model, the share of the cluster's accounts that have used it by each time."""
    fig = _figure()
    if activity.empty or not n_accounts:
        return _empty(fig, title)
    first = activity.groupby(["model", "node"])["hour"].min().reset_index()
    first["hour"] = _naive(first["hour"])
    ax = fig.add_subplot()
    order = first.groupby("model")["hour"].min().sort_values(kind="stable")
    for model in order.index:
        t = np.sort(first.loc[first["model"] == model, "hour"].to_numpy())
        ax.step(t, np.arange(1, len(t) + 1) / n_accounts, where="post", label=model or "(no model)")
    lo, hi = first["hour"].min(), first["hour"].max()
    _mark_release(ax, release, lo - pd.Timedelta(days=1), hi + pd.Timedelta(days=1))
    ax.set_ylim(0, 1.02)
    ax.set_ylabel("share of accounts that used it")
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title(title)
    fig.autofmt_xdate()
    return _png(fig)


def cluster_plots(activity: pd.DataFrame, created: pd.Series, n_accounts: int, release,
                  cid: int) -> dict[str, bytes]:
    """The four PNGs of a packet, by file name."""
    return {
        "activity.png": activity_png(activity, release, f"cluster {cid}: activity"),
        "heatmap.png": heatmap_png(activity, f"cluster {cid}: requests by weekday and hour (UTC)"),
        "creation.png": creation_png(created, f"cluster {cid}: account creation"),
        "adoption.png": adoption_png(activity, n_accounts, release, f"cluster {cid}: model adoption"),
    }
