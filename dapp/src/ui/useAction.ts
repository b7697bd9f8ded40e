// One user action at a time, with its problem shown: the busy flag disables the buttons while it
// runs, and a failure becomes the Problem to show.

import { useCallback, useState } from "react";
import { describeError, type Problem } from "../lib/errors";

export interface Action {
  busy: boolean;
  problem: Problem | undefined;
  setProblem: (p: Problem | undefined) => void;
  /** Runs `f`, busy meanwhile; its error becomes `problem`. */
  act: (f: () => Promise<void>) => Promise<void>;
}

export function useAction(): Action {
  const [busy, setBusy] = useState(false);
  const [problem, setProblem] = useState<Problem>();
  const act = useCallback(async (f: () => Promise<void>) => {
    setBusy(true);
    setProblem(undefined);
    try {
      await f();
    } catch (err) {
      setProblem(describeError(err));
    } finally {
      setBusy(false);
    }
  }, []);
  return { busy, problem, setProblem, act };
}
