/** MibView: Get / GetNext / GetBulk semantics of RFC 2741 §7.2.3 over a small fixed set of instances. */
import type { Varbind } from '../../src/snmp/agentx-pdu';
import { ValueType } from '../../src/snmp/agentx-pdu';
import { MibView } from '../../src/snmp/mib-view';

const R = [1, 3, 6, 1, 4, 1, 99];
const int = (oid: number[], value: number): Varbind => ({ oid, type: ValueType.Integer, value });
// scalars R.1.1.0 and R.1.2.0; a two-row column R.2.1.2.{1,2}
const view = new MibView([int([...R, 2, 1, 2, 2], 22), int([...R, 1, 1, 0], 11), int([...R, 1, 2, 0], 12), int([...R, 2, 1, 2, 1], 21)],
  [[...R, 1, 1], [...R, 1, 2], [...R, 2, 1, 2]]);
const range = (start: number[], end: number[] = [], include = false) => ({ start, include, end });
const values = (vbs: Varbind[]): Array<number | string> => vbs.map((v) => (v.type === ValueType.Integer ? v.value : v.type === ValueType.EndOfMibView ? 'end' : v.type));

describe('MibView', () => {
  it('Get: the instance, noSuchInstance under a known object, noSuchObject elsewhere', () => {
    expect(view.get([...R, 1, 2, 0])).toEqual(int([...R, 1, 2, 0], 12));
    expect(view.get([...R, 1, 2, 1]).type).toBe(ValueType.NoSuchInstance);
    expect(view.get([...R, 2, 1, 2, 3]).type).toBe(ValueType.NoSuchInstance);
    expect(view.get([...R, 1, 2]).type).toBe(ValueType.NoSuchObject); // the object itself is not an instance
    expect(view.get([...R, 3, 0]).type).toBe(ValueType.NoSuchObject);
  });

  it('GetNext: strictly after the start, or at it with include; endOfMibView at the range end', () => {
    expect(view.getNext(range(R)).oid).toEqual([...R, 1, 1, 0]);
    expect(view.getNext(range([...R, 1, 1, 0])).oid).toEqual([...R, 1, 2, 0]);
    expect(view.getNext(range([...R, 1, 1, 0], [], true)).oid).toEqual([...R, 1, 1, 0]);
    expect(view.getNext(range([...R, 1, 2, 0])).oid).toEqual([...R, 2, 1, 2, 1]);
    expect(view.getNext(range([...R, 1, 2, 0], [...R, 2]))).toEqual({ oid: [...R, 1, 2, 0], type: ValueType.EndOfMibView });
    expect(view.getNext(range([...R, 2, 1, 2, 2]))).toEqual({ oid: [...R, 2, 1, 2, 2], type: ValueType.EndOfMibView });
    expect(view.getNext(range([1, 3]))).toEqual(int([...R, 1, 1, 0], 11));
  });

  it('GetBulk: non-repeaters once, then rounds of the repeaters; stops when all have ended', () => {
    expect(values(view.getBulk(1, 3, [range([...R, 1, 1, 0]), range(R)]))).toEqual([12, 11, 12, 21]);
    // two repeaters interleaved, the second ending first; the last round is all endOfMibView
    expect(values(view.getBulk(0, 10, [range(R), range([...R, 2, 1, 2, 1])]))).toEqual([11, 22, 12, 'end', 21, 'end', 22, 'end', 'end', 'end']);
    expect(values(view.getBulk(0, 10, [range([...R, 2, 1, 2, 2])]))).toEqual(['end']);
    expect(view.getBulk(2, 5, [range(R), range([...R, 1, 1, 0])])).toHaveLength(2);
  });
});
