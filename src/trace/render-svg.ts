import type { LabPlan } from '../topology/address-plan.js';
import type { TraceReport } from './report.js';
export function renderTraceSvg(_plan: LabPlan, _r?: TraceReport): string { return '<svg xmlns="http://www.w3.org/2000/svg"/>'; }
export function wrapHtml(title: string, svg: string, text: string): string { return `<!doctype html><title>${title}</title>${svg}<pre>${text}</pre>`; }
