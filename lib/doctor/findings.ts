// The finding type and text format live in the contract: the node agent image prints them too.
export * from '../contract/doctor-findings';
