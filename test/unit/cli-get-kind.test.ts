// `lab get KIND` takes the kind as kubectl does (singular, plural, short, with its group);
// anything else is a UserError naming the kinds there are, not an empty list.
import t from 'tap';
import { kindOf } from '../../src/cli/apply.js';
import { UserError } from '../../src/util/errors.js';

t.test('the forms kubectl accepts', async (t) => {
  const cases: Array<[string, string]> = [
    ['VirtualService', 'VirtualService'], ['virtualservices', 'VirtualService'], ['vs', 'VirtualService'],
    ['authorizationpolicies', 'AuthorizationPolicy'], ['AuthorizationPolicy', 'AuthorizationPolicy'], ['ap', 'AuthorizationPolicy'],
    ['gateways', 'Gateway'], ['gateway.gateway.networking.k8s.io', 'Gateway'], ['gw', 'Gateway'],
    ['httproutes', 'HTTPRoute'], ['destinationrules', 'DestinationRule'], ['dr', 'DestinationRule'],
    ['peerauthentications', 'PeerAuthentication'], ['pa', 'PeerAuthentication'],
  ];
  for (const [arg, kind] of cases) t.equal(kindOf(arg), kind, arg);
});

t.test('an unknown kind is an error listing the kinds', async (t) => {
  t.throws(() => kindOf('services'), UserError);
  t.throws(() => kindOf('authorizationpolicie'), { message: 'unknown kind "authorizationpolicie"' });
  try { kindOf('pods'); } catch (e) { t.match((e as UserError).hint, /VirtualService, DestinationRule|Gateway, HTTPRoute/); }
});
