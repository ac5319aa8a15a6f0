/** lib/runner: the headless notebook runner (`runNotebook`, CLI in dist/lib/runner/cli.js), its Jupyter client, nbformat, HTML export, and the results a notebook recorded (`readRecords`). */
export {
  KernelClient, KernelError, findKernelSpec, listKernelSpecs, jupyterDataDirs, liveKernels, removeStaleKernelFiles, exitOnSignals,
  type KernelSpec, type NotebookOutput, type ExecuteResult, type StartOptions, type ExecuteOptions, type InputRequest, type DisplayMessage,
} from './jupyter-client.js';
export {
  readNotebook, parseNotebook, injectParameters, parameterLiteral, parametersSource, notebookProblems,
  type Notebook, type NotebookCell, type InjectResult,
} from './nbformat.js';
export { renderNotebookHtml, type HtmlOptions } from './html.js';
export {
  runNotebook, NotebookCellError, locateErrorLine, selectCell, answerInput, promptName, abortableSleep,
  type RunOptions, type RunResult, type CellEvent, type RerunEvent, type ProgressEvent,
} from './runner.js';
export { LiveProgress, type LiveProgressOptions } from './live-progress.js';
export { SaveDetector, RACY_MS } from './saves.js';
export { readRecords, type NotebookRecord } from './records.js';
