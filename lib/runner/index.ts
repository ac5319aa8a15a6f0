/** lib/runner: the headless notebook runner (`runNotebook`, CLI in dist/lib/runner/cli.js), its Jupyter client, nbformat, HTML export, and the results a notebook recorded (`readRecords`). */
export {
  KernelClient, KernelError, findKernelSpec, listKernelSpecs, jupyterDataDirs,
  type KernelSpec, type NotebookOutput, type ExecuteResult, type StartOptions, type ExecuteOptions,
} from './jupyter-client.js';
export {
  readNotebook, parseNotebook, injectParameters, parameterLiteral, parametersSource, notebookProblems,
  type Notebook, type NotebookCell, type InjectResult,
} from './nbformat.js';
export { renderNotebookHtml, type HtmlOptions } from './html.js';
export {
  runNotebook, NotebookCellError, locateErrorLine, selectCell,
  type RunOptions, type RunResult, type CellEvent, type RerunEvent,
} from './runner.js';
export { readRecords, type NotebookRecord } from './records.js';
