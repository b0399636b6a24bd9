import { annotationsOf, type Service } from '../k8s/objects.js'
import * as A from './annotations.js'

/** Which controller builds the load balancer: it decides which annotations are read. */
export type LoadBalancerController = 'in-tree' | 'aws-load-balancer-controller' | 'eks-auto-mode' | 'other'

export function loadBalancerController(service: Service, type = annotationsOf(service)[A.AWS_LB_TYPE]): LoadBalancerController {
  const lbClass = service.spec?.loadBalancerClass
  if (lbClass == null || lbClass === '') {
    return type !== undefined && A.LBC_TYPES.has(type) ? 'aws-load-balancer-controller' : 'in-tree'
  }
  if (lbClass === A.LBC_CLASS) return 'aws-load-balancer-controller'
  if (lbClass === A.EKS_AUTO_CLASS) return 'eks-auto-mode'
  return 'other'
}
