"""Reader studies ("spot the fake"): build a blinded study, serve it to readers, analyse their answers."""

from medsynth.study.analyse import analyse_study, summarise
from medsynth.study.create import create_study
from medsynth.study.parameters import REASONS, StudyParameters
from medsynth.study.server import make_server, serve_study
from medsynth.study.store import Study

__all__ = ["REASONS", "Study", "StudyParameters", "analyse_study", "create_study", "make_server", "serve_study",
           "summarise"]
