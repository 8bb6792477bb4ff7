import type { ErpConfig } from '../config/erp.ts';
import type { MesConfig } from '../config/mes.ts';
import type { ErpConnector } from './erp/types.ts';
import type { MesConnector } from './mes/types.ts';
import { RestMesConnector } from './mes/rest.ts';
import { SapOdataConnector } from './erp/sap.ts';

/** The connector a mes.yml describes. SOAP reads its WSDL first, so creation is async. */
export async function createMesConnector(cfg: MesConfig): Promise<MesConnector> {
  if (cfg.systemType === 'soap') throw new Error('SOAP MES connector: not available in this build');
  return new RestMesConnector(cfg);
}

/** The connector an erp.yml describes. */
export async function createErpConnector(cfg: ErpConfig): Promise<ErpConnector> {
  if (cfg.systemType === 'oracle_rest') throw new Error('Oracle connector: not available in this build');
  return new SapOdataConnector(cfg);
}
