"""``Problem`` and ``ProblemKind`` now live in the domain; this name stays for existing imports."""

from domain.problems import Problem, ProblemKind

__all__ = ["Problem", "ProblemKind"]
