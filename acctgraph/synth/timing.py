"""Time in a synthetic world: the calendar, activity profiles and vectorised samplers.

Human activity is drawn from an hourly weight curve over the whole window in
*local* time (hour-of-day rhythm x weekday effect x trend, plus optional spikes
such as university deadlines), by inverse-CDF sampling restricted to each
account's active range. Sessions then give requests their in-session spacing.

Example:
    >>> import numpy as np
    >>> cal = Calendar("2026-01-05", days=7, release_day=3)
    >>> s = HourSampler(cal.weights("work"))
    >>> h = s.sample(np.zeros(1000), np.full(1000, 7 * 24.0), np.random.default_rng(0))
    >>> bool(((h % 24 >= 7) & (h % 24 < 19)).mean() > 0.8)
    True
"""

from __future__ import annotations

import datetime as _dt

import numpy as np

US_PER_S = 1_000_000
US_PER_H = 3_600 * US_PER_S

HOURLY: dict[str, list[float]] = {
    "personal": [1.2, 0.7, 0.4, 0.25, 0.2, 0.25, 0.5, 1.0, 1.6, 2.0, 2.2, 2.3,
                 2.4, 2.3, 2.2, 2.2, 2.3, 2.5, 2.8, 3.2, 3.5, 3.4, 2.8, 2.0],
    "work": [0.05] * 7 + [0.6, 2.5, 4.0, 4.2, 3.8, 2.5, 3.6, 4.0, 3.8, 3.0, 1.6, 0.6, 0.3, 0.2, 0.15, 0.1, 0.08],
    "student": [2.5, 1.8, 1.0, 0.5, 0.25, 0.15, 0.2, 0.4, 0.9, 1.4, 1.8, 2.0,
                2.0, 2.1, 2.3, 2.4, 2.4, 2.5, 2.7, 3.0, 3.4, 3.8, 3.9, 3.3],
    "mobile": [1.0, 0.5, 0.3, 0.2, 0.2, 0.3, 0.8, 2.2, 2.6, 1.8, 1.5, 1.7,
               2.4, 2.1, 1.6, 1.6, 1.9, 2.6, 2.8, 2.7, 3.0, 3.1, 2.6, 1.7],
    "night": [3.0, 3.2, 3.0, 2.4, 1.6, 0.8, 0.4, 0.3, 0.3, 0.4, 0.6, 0.8,
              1.0, 1.1, 1.2, 1.3, 1.4, 1.6, 1.8, 2.0, 2.3, 2.6, 2.8, 3.0],
    "flat": [1.0] * 24,
    "operator": [1.6, 1.3, 0.8, 0.5, 0.4, 0.4, 0.5, 0.8, 1.5, 2.2, 2.5, 2.5,
                 2.0, 2.4, 2.6, 2.6, 2.5, 2.2, 1.8, 2.0, 2.2, 2.2, 2.0, 1.8],
}
WEEKLY: dict[str, list[float]] = {  # Monday .. Sunday
    "personal": [1.0, 1.0, 1.0, 1.0, 0.95, 0.85, 0.9],
    "work": [1.0, 1.05, 1.05, 1.0, 0.9, 0.07, 0.05],
    "student": [1.1, 1.1, 1.05, 1.0, 0.75, 0.6, 1.0],
    "mobile": [1.0, 1.0, 1.0, 1.0, 1.0, 0.95, 0.9],
    "night": [1.0, 1.0, 1.0, 1.0, 1.05, 1.1, 1.0],
    "flat": [1.0] * 7,
    "operator": [1.0, 1.0, 1.0, 1.0, 1.0, 0.8, 0.7],
}


class Calendar:
    """The window: ``days`` days from ``start`` (UTC midnight), a model release on ``release_day``.

    Local-hour arrays cover ``[-24, days*24 + 24)`` hours so that every time
    zone's local view of the window fits; index ``x`` is local hour ``x - 24``.
    """

    PAD = 24

    def __init__(self, start: str, days: int, release_day: int) -> None:
        d = _dt.date.fromisoformat(start)
        self.start = _dt.datetime.combine(d, _dt.time(), tzinfo=_dt.timezone.utc)
        self.start_us = int(self.start.timestamp()) * US_PER_S
        self.days = days
        self.hours = days * 24
        self.end_us = self.start_us + self.hours * US_PER_H
        self.release_h = float(release_day * 24)
        self.release_us = self.start_us + release_day * 24 * US_PER_H
        self.start_dow = d.weekday()

    def h_to_us(self, h: np.ndarray | float) -> np.ndarray:
        """Hours since window start (UTC) -> epoch microseconds (int64)."""
        return self.start_us + np.round(np.asarray(h, dtype=np.float64) * US_PER_H).astype(np.int64)

    def weights(self, profile: str, trend: bool = True) -> np.ndarray:
        """Hourly weights over the padded local window for a named profile."""
        n = self.hours + 2 * self.PAD
        x = np.arange(n) - self.PAD
        day = np.floor_divide(x, 24)
        w = np.asarray(HOURLY[profile])[x % 24] * np.asarray(WEEKLY[profile])[(self.start_dow + day) % 7]
        if trend:
            dc = np.clip(day, 0, self.days - 1).astype(np.float64)
            rel = self.release_h / 24
            bump = 1.0 + 0.35 * np.exp(-np.maximum(dc - rel, 0) / 2.0) * (dc >= rel)
            w = w * (1.0 + 0.004 * dc) * bump
        return w.astype(np.float64)


class HourSampler:
    """Inverse-CDF sampling of local times from hourly weights (piecewise uniform)."""

    def __init__(self, weights: np.ndarray) -> None:
        self.w = np.maximum(np.asarray(weights, dtype=np.float64), 1e-6)
        self.c = np.concatenate([[0.0], np.cumsum(self.w)])
        self.n = len(self.w)

    def _cdf(self, x: np.ndarray) -> np.ndarray:
        x = np.clip(x + Calendar.PAD, 0, self.n - 1e-9)
        i = np.floor(x).astype(np.int64)
        return self.c[i] + (x - i) * self.w[i]

    def sample(self, lo: np.ndarray, hi: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One local time (hours since window start, local) in ``[lo, hi)`` per element."""
        a, b = self._cdf(np.asarray(lo, dtype=np.float64)), self._cdf(np.asarray(hi, dtype=np.float64))
        u = a + rng.random(len(a)) * np.maximum(b - a, 0)
        i = np.clip(np.searchsorted(self.c, u, side="right") - 1, 0, self.n - 1)
        return i + (u - self.c[i]) / self.w[i] - Calendar.PAD


def sessions(n_req: np.ndarray, mean_len: float, rng: np.random.Generator
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Group each account's requests into sessions.

    Returns ``(sess_acct, req_acct, req_sess, req_pos)``: the account of each
    session, and for every request its account, global session index and
    position within the session. Requests come out ordered by session.
    """
    n_req = np.asarray(n_req, dtype=np.int64)
    p = min(1.0, 1.0 / max(mean_len, 1.0))
    s = np.where(n_req > 0, 1 + rng.binomial(np.maximum(n_req - 1, 0), p), 0)
    sess_acct = np.repeat(np.arange(len(n_req)), s)
    req_acct = np.repeat(np.arange(len(n_req)), n_req)
    first = np.cumsum(s) - s
    req_sess = first[req_acct] + np.minimum((rng.random(len(req_acct)) * s[req_acct]).astype(np.int64),
                                            s[req_acct] - 1)
    order = np.argsort(req_sess, kind="stable")
    req_sess = req_sess[order]
    req_acct = req_acct[order]
    req_pos = position_in_group(req_sess)
    return sess_acct, req_acct, req_sess, req_pos


def position_in_group(sorted_keys: np.ndarray) -> np.ndarray:
    """0, 1, 2 ... within each run of equal consecutive keys."""
    n = len(sorted_keys)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
    lengths = np.diff(np.r_[starts, n])
    return np.arange(n) - np.repeat(starts, lengths)


def group_cumsum(sorted_keys: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Cumulative sum of ``values`` within runs of equal keys, starting at 0 in each run."""
    n = len(sorted_keys)
    if n == 0:
        return np.zeros(0, dtype=np.float64)
    starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
    lengths = np.diff(np.r_[starts, n])
    cs = np.cumsum(values)
    return cs - np.repeat(cs[starts] - values[starts], lengths) - values
