import type { ErpConfig } from '../config/erp.ts';
import type { HistorianConfig } from '../config/historian.ts';
import type { MesConfig } from '../config/mes.ts';
import type { ErpConnector } from './erp/types.ts';
import type { MesConnector } from './mes/types.ts';
import { RestMesConnector } from './mes/rest.ts';
import { SoapMesConnector } from './mes/soap.ts';
import { SapOdataConnector } from './erp/sap.ts';
import { OracleRestConnector } from './erp/oracle.ts';
import { AvevaHistorianConnector } from './historian/aveva.ts';
import { PiWebApiConnector } from './historian/pi.ts';
import type { HistorianConnector } from './historian/types.ts';

/**
 * The connector a mes.yml describes. The SOAP connector reads its WSDL on first use (a MES that is down does not stop
 * the start).
 */
export function createMesConnector(cfg: MesConfig): MesConnector {
  return cfg.systemType === 'soap' ? new SoapMesConnector(cfg) : new RestMesConnector(cfg);
}

/** The connector an erp.yml describes. */
export function createErpConnector(cfg: ErpConfig): ErpConnector {
  return cfg.systemType === 'oracle_rest' ? new OracleRestConnector(cfg) : new SapOdataConnector(cfg);
}

/** The connector of one historian of historian.yml. */
export function createHistorianConnector(cfg: HistorianConfig): HistorianConnector {
  return cfg.type === 'pi-web-api' ? new PiWebApiConnector(cfg) : new AvevaHistorianConnector(cfg);
}
