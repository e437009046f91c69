"""The checks' tally: each check prints one line, and the run fails if any failed."""


class Report:
    def __init__(self):
        self.checks = 0
        self.failures = []

    def check(self, ok, what, why=""):
        """Records and prints one check; returns whether it passed."""
        self.checks += 1
        if ok:
            print(f"  ok    {what}")
        else:
            self.failures.append(f"{what}: {why}" if why else what)
            print(f"  FAIL  {what}" + (f": {why}" if why else ""))
        return bool(ok)

    @staticmethod
    def section(title):
        print(f"\n== {title}")

    def summary(self):
        """Prints the outcome; returns the exit status."""
        print()
        if self.failures:
            print(f"validate-deploy: {len(self.failures)} of {self.checks} checks FAILED:")
            for failure in self.failures:
                print(f"  - {failure}")
            return 1
        print(f"validate-deploy: all {self.checks} checks passed (static: no Docker engine or cluster used)")
        return 0
