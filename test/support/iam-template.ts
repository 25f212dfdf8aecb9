import { Template } from 'aws-cdk-lib/assertions';

/** The inline policy statements of the handler roles whose logical id matches `logicalIdPattern`. */
export function handlerStatements(t: Template, logicalIdPattern: RegExp): any[] {
  const roles = Object.entries(t.findResources('AWS::IAM::Role')).filter(([id]) => logicalIdPattern.test(id) && /HandlerRole/.test(id));
  if (roles.length === 0) throw new Error(`no handler role matches ${logicalIdPattern}`);
  return roles.flatMap(([, r]: [string, any]) => (r.Properties.Policies ?? []).flatMap((p: any) => p.PolicyDocument.Statement));
}

/** The handler role resource whose logical id matches `logicalIdPattern`. */
export function handlerRole(t: Template, logicalIdPattern: RegExp): any {
  const roles = Object.entries(t.findResources('AWS::IAM::Role')).filter(([id]) => logicalIdPattern.test(id) && /HandlerRole/.test(id));
  if (roles.length !== 1) throw new Error(`${roles.length} handler roles match ${logicalIdPattern}`);
  return roles[0][1];
}

/** The statements of the `AWS::IAM::Policy` resources whose logical id matches `logicalIdPattern`. */
export function policyStatements(t: Template, logicalIdPattern: RegExp): any[] {
  return Object.entries(t.findResources('AWS::IAM::Policy'))
    .filter(([id]) => logicalIdPattern.test(id))
    .flatMap(([, p]: [string, any]) => p.Properties.PolicyDocument.Statement);
}
