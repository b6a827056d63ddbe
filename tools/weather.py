"""Seattle daily weather (NOAA, via vega_datasets; data/seattle-weather.csv): loading, 7-day
windows, the time split, and the calendar features the server derives from a row's date."""
import csv
import datetime as dt
import math
import os

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CSV = os.path.join(ROOT, "data", "seattle-weather.csv")
OBSERVED = ["temp_max", "temp_min", "precipitation", "wind"]
FEATURES = OBSERVED + ["doy_sin", "doy_cos"]
TARGETS = ["temp_max", "temp_min"]
WINDOW = 7


def day_of_year_features(date):
    """Exactly what the server computes (CalendarFeatures.swift): 2π·(doy − 1)/365.25."""
    doy = date.timetuple().tm_yday
    angle = 2 * math.pi * (doy - 1) / 365.25
    return math.sin(angle), math.cos(angle)


def load():
    """Returns (dates, observed (N, 4) float32) in date order."""
    dates, rows = [], []
    with open(CSV) as f:
        for r in csv.DictReader(f):
            dates.append(dt.datetime.strptime(r["date"], "%Y/%m/%d").date())
            rows.append([float(r[k]) for k in OBSERVED])
    return dates, np.array(rows, dtype=np.float32)


def windows():
    """All 7-day windows and the day after: (dates of target, X (N, 7, 6), Y (N, 2), today (N, 2))."""
    dates, obs = load()
    cal = np.array([day_of_year_features(d) for d in dates], dtype=np.float32)
    feats = np.concatenate([obs, cal], axis=1)
    X, Y, target_dates = [], [], []
    for t in range(WINDOW, len(dates)):
        X.append(feats[t - WINDOW:t])
        Y.append(obs[t, :2])
        target_dates.append(dates[t])
    return np.array(target_dates), np.array(X), np.array(Y)


def split(target_dates):
    """Masks by the target day's year: train 2012–2013, validate 2014, test 2015."""
    years = np.array([d.year for d in target_dates])
    return years <= 2013, years == 2014, years == 2015


def request_rows(dates, obs_window):
    """A window as the server's named-row form."""
    return [{"date": d.isoformat(), **{k: round(float(v), 3) for k, v in zip(OBSERVED, row)}} for d, row in zip(dates, obs_window)]
