import { hostname } from 'node:os';

/** RFC 5424 §6.2.1 facility codes, by Kong's names. */
export const FACILITIES = {
  kern: 0, user: 1, mail: 2, daemon: 3, auth: 4, syslog: 5, lpr: 6, news: 7, uucp: 8, cron: 9, authpriv: 10, ftp: 11,
  local0: 16, local1: 17, local2: 18, local3: 19, local4: 20, local5: 21, local6: 22, local7: 23,
} as const;

/** RFC 5424 severities, by Kong's names (lower is more severe). */
export const SEVERITIES = { emerg: 0, alert: 1, crit: 2, err: 3, warning: 4, notice: 5, info: 6, debug: 7 } as const;

export type Facility = keyof typeof FACILITIES;
export type Severity = keyof typeof SEVERITIES;

export const APP_NAME = 'sluice';

/** HOSTNAME must be printable US-ASCII without spaces (RFC 5424 §6.2.4), 255 at most; "-" when unknown. */
export function headerHostname(name: string = hostname()): string {
  const clean = name.replace(/[^\x21-\x7e]/g, '-').slice(0, 255);
  return clean === '' ? '-' : clean;
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const two = (n: number): string => (n < 10 ? `0${n}` : String(n));

/** `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD MSG`: UTC with ms, no MSGID, no structured data. */
export const rfc5424 = (pri: number, ms: number, host: string, msg: string): string =>
  `<${pri}>1 ${new Date(ms).toISOString()} ${host} ${APP_NAME} ${process.pid} - - ${msg}`;

/** `<PRI>Mmm dd hh:mm:ss HOSTNAME TAG[pid]: MSG`: local time, the day space-padded (RFC 3164 §4.1.2). */
export function rfc3164(pri: number, ms: number, host: string, msg: string): string {
  const d = new Date(ms);
  const day = d.getDate();
  return `<${pri}>${MONTHS[d.getMonth()]} ${day < 10 ? ` ${day}` : day} ${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())} ${host} ${APP_NAME}[${process.pid}]: ${msg}`;
}
