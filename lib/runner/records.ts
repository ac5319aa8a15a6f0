/**
 * Recorded results read back from an executed notebook: every display output whose data carries RECORD_MIME
 * (`record(name, value)` in lib/notebook/record.ts), in cell order; a name recorded again replaces the earlier value,
 * as in scrapbook. Values are taken from the outputs, never from printed text.
 */
import { RECORD_MIME, type RecordKind, type RecordPayload, type RecordValue } from '../notebook/record.js';
import type { Notebook } from './nbformat.js';

/** A recorded value with where it came from. */
export interface NotebookRecord {
  name: string;
  kind: RecordKind;
  value: RecordValue;
  /** 1-based number of the code cell that recorded it (among code cells). */
  cell: number;
}

const KINDS: RecordKind[] = ['scalar', 'array', 'table', 'object'];

/** The records of an executed notebook, by name (last recording wins), in the order they were first recorded. */
export function readRecords(nb: Notebook, file = '<notebook>'): Record<string, NotebookRecord> {
  const out: Record<string, NotebookRecord> = {};
  let codeNumber = 0;
  for (const cell of nb.cells) {
    if (cell.cell_type !== 'code') continue;
    codeNumber++;
    for (const o of cell.outputs ?? []) {
      if (o.output_type !== 'display_data' && o.output_type !== 'execute_result') continue;
      const p = (o.data as Record<string, unknown>)[RECORD_MIME] as RecordPayload | undefined;
      if (p === undefined) continue;
      if (!p || typeof p !== 'object' || typeof p.name !== 'string' || !KINDS.includes(p.kind) || !('value' in p)) {
        throw new Error(`${file}: code cell ${codeNumber} has a ${RECORD_MIME} output that is not { name, kind, value } (found ${JSON.stringify(p).slice(0, 120)}); re-run the notebook with this version of brainnet`);
      }
      out[p.name] = { name: p.name, kind: p.kind, value: p.value, cell: codeNumber };
    }
  }
  return out;
}
